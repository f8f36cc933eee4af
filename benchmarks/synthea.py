"""A Synthea-shaped FHIR R4 transaction bundle, made up from a fixed seed.

Synthea (synthetichealth/synthea) writes one transaction Bundle per patient: every entry has
a `urn:uuid:` fullUrl and references point at those; practitioners, organisations and
locations are conditional references (`Practitioner?identifier=…`) into files of their own;
each encounter brings vital signs (blood pressure as a panel with two components), lab
results with values at full float precision ("26.48181027763049"), survey scores in
`{score}`, conditions, immunisations, procedures, medication requests, a diagnostic report
with its note as base64, a document reference, a claim and a large explanation of benefit;
a Provenance entry closes each patient's part. Nothing here is copied from Synthea's output:
the shapes are written from its documented R4 exporter, the values are random.

`write_bundle` streams the entries to the file as it makes them, so a bundle of any size
costs the generator little memory; it stops adding encounters to a patient once that
patient's share of the target size is written.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SYNTHEA = "https://github.com/synthetichealth/synthea"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
CVX = "http://hl7.org/fhir/sid/cvx"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
GIVEN = ["Jacinto", "Maritza", "Deon", "Shirlene", "Aurelio", "Kym", "Lorri", "Ezequiel"]
FAMILY = ["Kris", "Schaden", "Hintz", "Bergnaum", "Lueilwitz", "Rutherford", "Abbott"]
CITIES = ["Springfield", "Worcester", "Lowell", "Quincy", "Brockton", "Lynn"]

# (LOINC, display, UCUM unit, low, high): Synthea writes these as doubles, unrounded.
VITALS = [
    ("8302-2", "Body Height", "cm", 150.0, 190.0),
    ("72514-3", "Pain severity - 0-10 verbal numeric rating [Score] - Reported", "{score}", 0, 10),
    ("29463-7", "Body Weight", "kg", 50.0, 110.0),
    ("39156-5", "Body mass index (BMI) [Ratio]", "kg/m2", 18.0, 35.0),
    ("8867-4", "Heart rate", "/min", 55.0, 100.0),
    ("9279-1", "Respiratory rate", "/min", 12.0, 20.0),
    ("8310-5", "Body temperature", "Cel", 36.1, 37.9),
]
LABS = [
    ("2339-0", "Glucose [Mass/volume] in Blood", "mg/dL", 65.0, 110.0),
    ("6299-2", "Urea nitrogen [Mass/volume] in Blood", "mg/dL", 7.0, 20.0),
    ("38483-4", "Creatinine [Mass/volume] in Blood", "mg/dL", 0.6, 1.3),
    ("49765-1", "Calcium [Mass/volume] in Blood", "mg/dL", 8.5, 10.3),
    ("2947-0", "Sodium [Moles/volume] in Blood", "mmol/L", 136.0, 145.0),
    ("6298-4", "Potassium [Moles/volume] in Blood", "mmol/L", 3.5, 5.1),
    ("2069-3", "Chloride [Moles/volume] in Blood", "mmol/L", 98.0, 107.0),
    ("20565-8", "Carbon dioxide, total [Moles/volume] in Blood", "mmol/L", 22.0, 29.0),
]
CONDITIONS = [
    ("444814009", "Viral sinusitis (disorder)"),
    ("195662009", "Acute viral pharyngitis (disorder)"),
    ("10509002", "Acute bronchitis (disorder)"),
    ("162864005", "Body mass index 30+ - obesity (finding)"),
    ("59621000", "Essential hypertension (disorder)"),
]
VACCINES = [("140", "Influenza, seasonal, injectable, preservative free"), ("113", "Td (adult)")]
PROCEDURES = [("430193006", "Medication Reconciliation (procedure)"), ("710824005", "Assessment")]
MEDICATIONS = [("313782", "Acetaminophen 325 MG Oral Tablet"), ("834061", "Penicillin V 250 MG")]


class _Maker:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def digits(self, n: int) -> str:
        return "".join(self.rng.choice("0123456789") for _ in range(n))

    def name(self, pool: list[str]) -> str:
        return f"{self.rng.choice(pool)}{self.rng.randint(100, 999)}"  # Synthea's suffixes


def _concept(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _stamp(moment: dt.datetime) -> str:
    return moment.isoformat()


def _entry(resource: dict[str, Any]) -> dict[str, Any]:
    return {
        "fullUrl": f"urn:uuid:{resource['id']}",
        "resource": resource,
        "request": {"method": "POST", "url": resource["resourceType"]},
    }


def _meta(profile: str) -> dict[str, Any]:
    return {"profile": [f"http://hl7.org/fhir/us/core/StructureDefinition/{profile}"]}


def _patient(m: _Maker) -> dict[str, Any]:
    rid = m.uuid()
    given, family = m.name(GIVEN), m.name(FAMILY)
    born = dt.date(1940, 1, 1) + dt.timedelta(days=m.rng.randint(0, 27000))
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": rid,
        "meta": _meta("us-core-patient"),
        "text": {
            "status": "generated",
            "div": '<div xmlns="http://www.w3.org/1999/xhtml">Generated by '
            '<a href="https://github.com/synthetichealth/synthea">Synthea</a>. Version '
            "identifier: master-branch-latest . Person seed: " + m.digits(19) + "</div>",
        },
        "extension": [
            {
                "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
                "extension": [
                    {
                        "url": "ombCategory",
                        "valueCoding": {
                            "system": "urn:oid:2.16.840.1.113883.6.238",
                            "code": "2106-3",
                            "display": "White",
                        },
                    },
                    {"url": "text", "valueString": "White"},
                ],
            },
            {
                "url": "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName",
                "valueString": f"{m.name(GIVEN)} {m.name(FAMILY)}",
            },
            {
                "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex",
                "valueCode": m.rng.choice("MF"),
            },
            {
                "url": "http://synthetichealth.github.io/synthea/disability-adjusted-life-years",
                "valueDecimal": m.rng.random() * 3,
            },
            {
                "url": "http://synthetichealth.github.io/synthea/quality-adjusted-life-years",
                "valueDecimal": 20 + m.rng.random() * 50,
            },
        ],
        "identifier": [
            {"system": SYNTHEA, "value": rid},
            {
                "type": _concept(
                    "http://terminology.hl7.org/CodeSystem/v2-0203", "MR", "Medical Record Number"
                ),
                "system": "http://hospital.smarthealthit.org",
                "value": rid,
            },
            {
                "type": _concept(
                    "http://terminology.hl7.org/CodeSystem/v2-0203", "SS", "Social Security Number"
                ),
                "system": "http://hl7.org/fhir/sid/us-ssn",
                "value": f"999-{m.digits(2)}-{m.digits(4)}",
            },
        ],
        "name": [{"use": "official", "family": family, "given": [given], "prefix": ["Mx."]}],
        "telecom": [
            {"system": "phone", "value": f"555-{m.digits(3)}-{m.digits(4)}", "use": "home"}
        ],
        "gender": m.rng.choice(["male", "female"]),
        "birthDate": born.isoformat(),
        "address": [
            {
                "extension": [
                    {
                        "url": "http://hl7.org/fhir/StructureDefinition/geolocation",
                        "extension": [
                            {"url": "latitude", "valueDecimal": 42 + m.rng.random()},
                            {"url": "longitude", "valueDecimal": -71 - m.rng.random()},
                        ],
                    }
                ],
                "line": [f"{m.rng.randint(1, 999)} {m.name(FAMILY)} Street"],
                "city": m.rng.choice(CITIES),
                "state": "MA",
                "country": "US",
            }
        ],
        "maritalStatus": _concept(
            "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "M", "Married"
        ),
        "multipleBirthBoolean": False,
        "communication": [{"language": _concept("urn:ietf:bcp:47", "en-US", "English")}],
    }
    if m.rng.random() < 0.2:
        patient["deceasedDateTime"] = _stamp(dt.datetime(2020, 5, 4, 11, 0, tzinfo=dt.UTC))
    return patient


class _Encounter:
    """The resources one visit leaves, written as Synthea's exporter orders them."""

    def __init__(self, m: _Maker, patient: dict[str, Any], start: dt.datetime) -> None:
        self.m = m
        self.subject = {"reference": f"urn:uuid:{patient['id']}"}
        official = patient["name"][0]
        self.display = f"{official['prefix'][0]} {official['given'][0]} {official['family']}"
        self.start = start
        self.end = start + dt.timedelta(minutes=m.rng.choice([15, 30, 45]))
        self.id = m.uuid()
        self.ref = {"reference": f"urn:uuid:{self.id}"}
        npi = "99999" + m.digits(5)
        self.practitioner = {
            "reference": f"Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|{npi}",
            "display": f"Dr. {m.name(GIVEN)} {m.name(FAMILY)}",
        }
        self.organization = {
            "reference": f"Organization?identifier={SYNTHEA}|{m.uuid()}",
            "display": "HEALTH CENTER",
        }

    def resources(self) -> Iterator[dict[str, Any]]:
        m = self.m
        yield self.encounter()
        results = [self.observation(*v) for v in VITALS]
        results.append(self.blood_pressure())
        if m.rng.random() < 0.5:
            results += [self.observation(*lab, category="laboratory") for lab in LABS]
        results.append(self.smoking())
        yield from results
        if m.rng.random() < 0.3:
            yield self.condition()
        if m.rng.random() < 0.3:
            yield self.immunization()
        yield self.procedure()
        if m.rng.random() < 0.4:
            yield self.medication_request()
        yield self.diagnostic_report(results)
        yield self.document_reference()
        claim = self.claim()
        yield claim
        yield self.explanation_of_benefit(claim)

    def _base(self, kind: str, profile: str) -> dict[str, Any]:
        return {"resourceType": kind, "id": self.m.uuid(), "meta": _meta(profile)}

    def encounter(self) -> dict[str, Any]:
        return {
            "resourceType": "Encounter",
            "id": self.id,
            "meta": _meta("us-core-encounter"),
            "identifier": [{"use": "official", "system": SYNTHEA, "value": self.id}],
            "status": "finished",
            "class": {
                "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                "code": "AMB",
            },
            "type": [_concept(SNOMED, "410620009", "Well child visit (procedure)")],
            "subject": self.subject | {"display": self.display},
            "participant": [
                {
                    "type": [
                        _concept(
                            "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                            "PPRF",
                            "primary performer",
                        )
                    ],
                    "period": {"start": _stamp(self.start), "end": _stamp(self.end)},
                    "individual": self.practitioner,
                }
            ],
            "period": {"start": _stamp(self.start), "end": _stamp(self.end)},
            "location": [
                {
                    "location": {
                        "reference": f"Location?identifier={SYNTHEA}|{self.m.uuid()}",
                        "display": "HEALTH CENTER",
                    }
                }
            ],
            "serviceProvider": self.organization,
        }

    def observation(
        self,
        code: str,
        display: str,
        unit: str,
        low: float,
        high: float,
        category: str = "vital-signs",
    ) -> dict[str, Any]:
        value: float = self.m.rng.uniform(low, high)
        if unit == "{score}":
            value = float(round(value))
        return self._base("Observation", "us-core-vital-signs") | {
            "status": "final",
            "category": [{"coding": [{"system": OBS_CATEGORY, "code": category}]}],
            "code": _concept(LOINC, code, display),
            "subject": self.subject,
            "encounter": self.ref,
            "effectiveDateTime": _stamp(self.start),
            "issued": self.start.isoformat(timespec="milliseconds"),
            "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
        }

    def blood_pressure(self) -> dict[str, Any]:
        def part(code: str, display: str, value: int) -> dict[str, Any]:
            return {
                "code": _concept(LOINC, code, display),
                "valueQuantity": {
                    "value": value,
                    "unit": "mm[Hg]",
                    "system": UCUM,
                    "code": "mm[Hg]",
                },
            }

        rng = self.m.rng
        return self._base("Observation", "us-core-blood-pressure") | {
            "status": "final",
            "category": [{"coding": [{"system": OBS_CATEGORY, "code": "vital-signs"}]}],
            "code": _concept(LOINC, "85354-9", "Blood pressure panel with all children optional"),
            "subject": self.subject,
            "encounter": self.ref,
            "effectiveDateTime": _stamp(self.start),
            "issued": self.start.isoformat(timespec="milliseconds"),
            "component": [
                part("8462-4", "Diastolic Blood Pressure", rng.randint(65, 95)),
                part("8480-6", "Systolic Blood Pressure", rng.randint(100, 150)),
            ],
        }

    def smoking(self) -> dict[str, Any]:
        return self._base("Observation", "us-core-smokingstatus") | {
            "status": "final",
            "category": [{"coding": [{"system": OBS_CATEGORY, "code": "survey"}]}],
            "code": _concept(LOINC, "72166-2", "Tobacco smoking status"),
            "subject": self.subject,
            "encounter": self.ref,
            "effectiveDateTime": _stamp(self.start),
            "issued": self.start.isoformat(timespec="milliseconds"),
            "valueCodeableConcept": _concept(SNOMED, "266919005", "Never smoked tobacco (finding)"),
        }

    def condition(self) -> dict[str, Any]:
        code, display = self.m.rng.choice(CONDITIONS)
        return self._base("Condition", "us-core-condition") | {
            "clinicalStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                        "code": "active",
                    }
                ]
            },
            "verificationStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                        "code": "confirmed",
                    }
                ]
            },
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                            "code": "encounter-diagnosis",
                            "display": "Encounter Diagnosis",
                        }
                    ]
                }
            ],
            "code": _concept(SNOMED, code, display),
            "subject": self.subject,
            "encounter": self.ref,
            "onsetDateTime": _stamp(self.start),
            "recordedDate": _stamp(self.start),
        }

    def immunization(self) -> dict[str, Any]:
        code, display = self.m.rng.choice(VACCINES)
        return self._base("Immunization", "us-core-immunization") | {
            "status": "completed",
            "vaccineCode": _concept(CVX, code, display),
            "patient": self.subject,
            "encounter": self.ref,
            "occurrenceDateTime": _stamp(self.start),
            "primarySource": True,
        }

    def procedure(self) -> dict[str, Any]:
        code, display = self.m.rng.choice(PROCEDURES)
        return self._base("Procedure", "us-core-procedure") | {
            "status": "completed",
            "code": _concept(SNOMED, code, display),
            "subject": self.subject,
            "encounter": self.ref,
            "performedPeriod": {"start": _stamp(self.start), "end": _stamp(self.end)},
            "location": {"reference": f"Location?identifier={SYNTHEA}|{self.m.uuid()}"},
        }

    def medication_request(self) -> dict[str, Any]:
        code, display = self.m.rng.choice(MEDICATIONS)
        return self._base("MedicationRequest", "us-core-medicationrequest") | {
            "status": "stopped",
            "intent": "order",
            "medicationCodeableConcept": _concept(RXNORM, code, display),
            "subject": self.subject,
            "encounter": self.ref,
            "authoredOn": _stamp(self.start),
            "requester": self.practitioner,
            "dosageInstruction": [{"sequence": 1, "asNeededBoolean": True}],
        }

    def diagnostic_report(self, results: list[dict[str, Any]]) -> dict[str, Any]:
        note = (
            f"{self.start.date()}\n\n# Chief Complaint\nNo complaints.\n\n# History of Present "
            "Illness\n" + " ".join(self.m.name(GIVEN) for _ in range(120)) + "\n\n# Plan\n"
        )
        return self._base("DiagnosticReport", "us-core-diagnosticreport-note") | {
            "status": "final",
            "category": [_concept(LOINC, "34117-2", "History and physical note")],
            "code": _concept(LOINC, "51847-2", "Evaluation + Plan note"),
            "subject": self.subject,
            "encounter": self.ref,
            "effectiveDateTime": _stamp(self.start),
            "issued": self.start.isoformat(timespec="milliseconds"),
            "performer": [self.practitioner],
            "result": [
                {"reference": f"urn:uuid:{r['id']}", "display": r["code"]["text"]} for r in results
            ],
            "presentedForm": [
                {
                    "contentType": "text/plain; charset=utf-8",
                    "data": base64.b64encode(note.encode()).decode(),
                }
            ],
        }

    def document_reference(self) -> dict[str, Any]:
        note = " ".join(self.m.name(FAMILY) for _ in range(150))
        return self._base("DocumentReference", "us-core-documentreference") | {
            "identifier": [{"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{self.m.uuid()}"}],
            "status": "superseded",
            "type": _concept(LOINC, "34117-2", "History and physical note"),
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://hl7.org/fhir/us/core/CodeSystem/"
                            "us-core-documentreference-category",
                            "code": "clinical-note",
                            "display": "Clinical Note",
                        }
                    ]
                }
            ],
            "subject": self.subject,
            "date": _stamp(self.start),
            "author": [self.practitioner],
            "custodian": self.organization,
            "content": [
                {
                    "attachment": {
                        "contentType": "text/plain; charset=utf-8",
                        "data": base64.b64encode(note.encode()).decode(),
                    },
                    "format": {
                        "system": "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode",
                        "code": "urn:ihe:iti:xds:2017:mimeTypeSufficient",
                        "display": "mimeType Sufficient",
                    },
                }
            ],
            "context": {
                "encounter": [self.ref],
                "period": {"start": _stamp(self.start), "end": _stamp(self.end)},
            },
        }

    def claim(self) -> dict[str, Any]:
        items: list[dict[str, Any]] = [
            {
                "sequence": n + 1,
                "productOrService": _concept(SNOMED, "410620009", "Well child visit"),
                "encounter": [self.ref],
                "net": {"value": round(self.m.rng.uniform(50, 500), 2), "currency": "USD"},
            }
            for n in range(4)
        ]
        return {
            "resourceType": "Claim",
            "id": self.m.uuid(),
            "status": "active",
            "type": _concept(
                "http://terminology.hl7.org/CodeSystem/claim-type", "professional", "professional"
            ),
            "use": "claim",
            "patient": self.subject | {"display": self.display},
            "billablePeriod": {"start": _stamp(self.start), "end": _stamp(self.end)},
            "created": _stamp(self.end),
            "provider": self.organization,
            "priority": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/processpriority",
                        "code": "normal",
                    }
                ]
            },
            "insurance": [{"sequence": 1, "focal": True, "coverage": {"display": "Medicaid"}}],
            "item": items,
            "total": {"value": sum(i["net"]["value"] for i in items), "currency": "USD"},
        }

    def explanation_of_benefit(self, claim: dict[str, Any]) -> dict[str, Any]:
        adjudication = [
            {
                "category": _concept(
                    "https://bluebutton.cms.gov/resources/codesystem/adjudication",
                    code,
                    display,
                ),
                "amount": {"value": round(self.m.rng.uniform(0, 400), 2), "currency": "USD"},
            }
            for code, display in (
                ("https://bluebutton.cms.gov/resources/variables/line_coinsrnc_amt", "Coinsurance"),
                ("https://bluebutton.cms.gov/resources/variables/line_prvdr_pmt_amt", "Payment"),
                ("https://bluebutton.cms.gov/resources/variables/line_sbmtd_chrg_amt", "Charge"),
                ("https://bluebutton.cms.gov/resources/variables/line_allowed_chrg_amt", "Allowed"),
            )
        ]
        contained_id = self.m.uuid()
        return {
            "resourceType": "ExplanationOfBenefit",
            "id": self.m.uuid(),
            "contained": [
                {
                    "resourceType": "ServiceRequest",
                    "id": contained_id,
                    "status": "completed",
                    "intent": "order",
                    "subject": self.subject,
                    "requester": self.practitioner,
                    "performer": [self.practitioner],
                },
                {
                    "resourceType": "Coverage",
                    "id": self.m.uuid(),
                    "status": "active",
                    "type": {"text": "Medicaid"},
                    "beneficiary": self.subject,
                    "payor": [{"display": "Medicaid"}],
                },
            ],
            "identifier": [
                {
                    "system": "https://bluebutton.cms.gov/resources/variables/clm_id",
                    "value": claim["id"],
                },
                {
                    "system": "https://bluebutton.cms.gov/resources/identifier/claim-group",
                    "value": self.m.digits(11),
                },
            ],
            "status": "active",
            "type": claim["type"],
            "use": "claim",
            "patient": self.subject,
            "billablePeriod": claim["billablePeriod"],
            "created": claim["created"],
            "insurer": {"display": "Medicaid"},
            "provider": self.practitioner,
            "referral": {"reference": f"#{contained_id}"},
            "claim": {"reference": f"urn:uuid:{claim['id']}"},
            "outcome": "complete",
            "careTeam": [
                {
                    "sequence": 1,
                    "provider": self.practitioner,
                    "role": _concept(
                        "http://terminology.hl7.org/CodeSystem/claimcareteamrole",
                        "primary",
                        "Primary Care Practitioner",
                    ),
                }
            ],
            "insurance": [{"focal": True, "coverage": {"reference": "#" + contained_id}}],
            "item": [
                {
                    "sequence": item["sequence"],
                    "category": _concept(
                        "https://bluebutton.cms.gov/resources/variables/line_cms_type_srvc_cd",
                        "1",
                        "Medical care",
                    ),
                    "productOrService": item["productOrService"],
                    "servicedPeriod": claim["billablePeriod"],
                    "locationCodeableConcept": _concept(
                        "http://terminology.hl7.org/CodeSystem/ex-serviceplace", "19", "Off Campus"
                    ),
                    "encounter": item["encounter"],
                    "net": item["net"],
                    "adjudication": adjudication,
                }
                for item in claim["item"]
            ],
            "total": [
                {
                    "category": _concept(
                        "http://terminology.hl7.org/CodeSystem/adjudication",
                        "submitted",
                        "Submitted Amount",
                    ),
                    "amount": claim["total"],
                }
            ],
            "payment": {"amount": {"value": 0.0, "currency": "USD"}},
        }


def _allergy(m: _Maker, patient: dict[str, Any], when: dt.datetime) -> dict[str, Any]:
    return {
        "resourceType": "AllergyIntolerance",
        "id": m.uuid(),
        "meta": _meta("us-core-allergyintolerance"),
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                    "code": "active",
                }
            ]
        },
        "verificationStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                    "code": "confirmed",
                }
            ]
        },
        "type": "allergy",
        "category": ["food"],
        "criticality": "low",
        "code": _concept(SNOMED, "300913006", "Shellfish (substance)"),
        "patient": {"reference": f"urn:uuid:{patient['id']}"},
        "recordedDate": _stamp(when),
    }


def _provenance(m: _Maker, targets: list[str], when: dt.datetime) -> dict[str, Any]:
    return {
        "resourceType": "Provenance",
        "id": m.uuid(),
        "meta": _meta("us-core-provenance"),
        "target": [{"reference": f"urn:uuid:{t}"} for t in targets],
        "recorded": _stamp(when),
        "agent": [
            {
                "type": _concept(
                    "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                    "author",
                    "Author",
                ),
                "who": {"reference": f"Organization?identifier={SYNTHEA}|{m.uuid()}"},
            }
        ],
    }


def write_bundle(path: Path, *, patients: int, target_bytes: int, seed: int) -> int:
    """Write the bundle; returns its size in bytes."""
    m = _Maker(seed)
    share = target_bytes // patients
    written = 0
    with path.open("w", encoding="utf-8") as out:
        head = '{"resourceType": "Bundle", "type": "transaction", "entry": [\n'
        out.write(head)
        written += len(head)
        first = True
        for _ in range(patients):
            patient = _patient(m)
            start = dt.datetime(2005, 1, 1, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
            own = 0
            ids: list[str] = []
            chunks = [patient, _allergy(m, patient, start)]
            while True:
                for resource in chunks:
                    text = ("" if first else ",\n") + json.dumps(_entry(resource))
                    first = False
                    out.write(text)
                    own += len(text)
                    ids.append(resource["id"])
                if own >= share:
                    break
                start += dt.timedelta(days=m.rng.randint(20, 200), minutes=m.rng.randint(0, 600))
                chunks = list(_Encounter(m, patient, start).resources())
            text = ",\n" + json.dumps(_entry(_provenance(m, ids, start)))
            out.write(text)
            written += own + len(text)
        out.write("\n]}\n")
        written += 4
    return written
