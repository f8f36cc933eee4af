"""The Bot API methods the emulator answers, by what they act on."""
