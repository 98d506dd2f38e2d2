#!/usr/bin/env python3
"""Generate pyjwt.json: HS256 tokens from an independent JWT implementation (PyJWT).

The Swift tests (Tests/SharedTests/JWTTests.swift) load pyjwt.json and check that
HS256JWT accepts every token in "valid" and rejects every token in "invalid" with
the named JWTError case. Nothing depends on the real clock: the tests inject a
clock fixed at the fixture's "now", and this script checks its own output with
PyJWT under the same frozen clock.

Regenerate (from the repository root):

    pip install pyjwt            # tested with PyJWT 2.15.1
    python3 Tests/SharedTests/Fixtures/make_pyjwt_fixtures.py

The output is deterministic (fixed claims, HMAC is deterministic), so re-running it
only changes pyjwt.json when PyJWT's serialization changes.
"""

import base64
import hashlib
import hmac
import json
import pathlib
from datetime import datetime, timezone

import jwt
import jwt.api_jwt

SECRET = "pyjwt-fixture-secret-that-is-64-bytes-long-for-hs512-0123456789!"
OTHER_SECRET = "another-secret-of-sufficient-length-for-hmac-sha-256-and-512-xyz"
NOW = 1_700_000_000  # 2023-11-14T22:13:20Z
LEEWAY = 30
ISSUER = "urn:example:issuer"
AUDIENCE = "urn:example:audience"
FAR_FUTURE = NOW + 10 * 365 * 24 * 3600

assert len(SECRET.encode()) == 64 and len(OTHER_SECRET.encode()) == 64


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_json(value) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def sign(claims, algorithm="HS256", key=SECRET, headers=None) -> str:
    return jwt.encode(claims, key, algorithm=algorithm, headers=headers)


def hand_signed(header: dict, claims: dict, key: str = SECRET) -> str:
    """A token PyJWT refuses to produce (e.g. a lower-case alg), HMAC-SHA256 signed."""
    signing_input = b64url_json(header) + "." + b64url_json(claims)
    mac = hmac.new(key.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(mac)


def replace_char(segment: str, index: int) -> str:
    """Swap one base64url character for another. Callers pick a character whose six
    bits are all used (not the last one), so the segment stays canonical base64url
    while its decoded bytes change."""
    old = segment[index]
    new = "B" if old != "B" else "F"
    return segment[:index] + new + segment[index + 1 :]


def base_claims(**extra):
    claims = {"sub": "user-123", "iss": ISSUER, "aud": AUDIENCE, "iat": NOW - 60, "exp": FAR_FUTURE}
    claims.update(extra)
    return claims


valid = [
    ("basic", sign(base_claims())),
    ("aud list with nbf", sign(base_claims(aud=["urn:other", AUDIENCE], nbf=NOW - 10))),
    (
        "nested and mixed types",
        sign(
            base_claims(
                jti="0f9c2f5e-3f4a-4c55-9d3e-6c1b1d7c9a10",
                name="Zoë 🚀",
                admin=True,
                score=1.5,
                roles=["reader", "writer"],
                profile={"age": 42, "tags": [], "address": None, "verified": False},
            )
        ),
    ),
    ("kid header", sign(base_claims(), headers={"kid": "key-1"})),
    ("fractional exp", sign(base_claims(exp=NOW + 3600.5))),
    ("exp just inside leeway", sign(base_claims(exp=NOW - LEEWAY + 1))),
    ("nbf just inside leeway", sign(base_claims(nbf=NOW + LEEWAY))),
    ("iat just inside leeway", sign(base_claims(iat=NOW + LEEWAY))),
]

good = sign(base_claims())
header_b64, payload_b64, signature_b64 = good.split(".")

# (name, token, expected JWTError case, why PyJWT accepts it if it does)
invalid = [
    ("HS512 signed", sign(base_claims(), algorithm="HS512"), "unsupportedAlgorithm"),
    ("HS384 signed", sign(base_claims(), algorithm="HS384"), "unsupportedAlgorithm"),
    ("alg none", jwt.encode(base_claims(), None, algorithm=None), "unsupportedAlgorithm"),
    ("alg lower-case hs256", hand_signed({"alg": "hs256", "typ": "JWT"}, base_claims()), "unsupportedAlgorithm"),
    ("crit header", sign(base_claims(), headers={"crit": ["exp"]}), "unsupportedCritical"),
    (
        "payload byte changed",
        ".".join([header_b64, replace_char(payload_b64, len(payload_b64) // 2), signature_b64]),
        "invalidSignature",
    ),
    ("signature byte changed", ".".join([header_b64, payload_b64, replace_char(signature_b64, 0)]), "invalidSignature"),
    (
        "signature truncated to 31 bytes",
        ".".join([header_b64, payload_b64, b64url(base64.urlsafe_b64decode(signature_b64 + "=")[:31])]),
        "invalidSignature",
    ),
    ("signed with another secret", sign(base_claims(), key=OTHER_SECRET), "invalidSignature"),
    ("expired", sign(base_claims(exp=NOW - 3600)), "expired"),
    ("expired at leeway edge", sign(base_claims(exp=NOW - LEEWAY)), "expired"),
    ("nbf in the future", sign(base_claims(nbf=NOW + 3600)), "notYetValid"),
    ("nbf just past leeway", sign(base_claims(nbf=NOW + LEEWAY + 1)), "notYetValid"),
    ("iat in the future", sign(base_claims(iat=NOW + 86400)), "notYetValid"),
    # PyJWT runs int() on exp, so it accepts a numeric string; RFC 7519 §2 NumericDate is a JSON number.
    ("exp as string", sign(base_claims(exp=str(FAR_FUTURE))), "invalidClaim", "PyJWT accepts numeric strings"),
    ("nbf as bool", sign(base_claims(nbf=False)), "invalidClaim", "PyJWT reads false as 0"),
    ("wrong issuer", sign(base_claims(iss="urn:example:other")), "invalidIssuer"),
    ("issuer prefix only", sign(base_claims(iss="urn:example")), "invalidIssuer"),
    ("wrong audience", sign(base_claims(aud="urn:example:other")), "invalidAudience"),
    ("audience list without ours", sign(base_claims(aud=["urn:a", "urn:b"])), "invalidAudience"),
    ("missing exp", sign({k: v for k, v in base_claims().items() if k != "exp"}), "missingClaim"),
    ("missing aud", sign({k: v for k, v in base_claims().items() if k != "aud"}), "missingClaim"),
    ("two segments", header_b64 + "." + payload_b64, "malformed"),
    # PyJWT re-pads before decoding; RFC 7515 §2 base64url has no padding.
    ("padded signature", good + "=", "malformed", "PyJWT tolerates padding"),
]


class FrozenDatetime(datetime):
    @classmethod
    def now(cls, tz=None):
        return datetime.fromtimestamp(NOW, tz=tz or timezone.utc)


def pyjwt_decode(token: str):
    return jwt.decode(
        token,
        SECRET,
        algorithms=["HS256"],
        issuer=ISSUER,
        audience=AUDIENCE,
        leeway=LEEWAY,
        options={"require": ["exp"]},
    )


def self_check():
    """PyJWT itself, with the same frozen clock, must agree on every case."""
    real_datetime = jwt.api_jwt.datetime
    jwt.api_jwt.datetime = FrozenDatetime
    try:
        for name, token in valid:
            pyjwt_decode(token)  # raises if PyJWT disagrees
        for name, token, _, *stricter in invalid:
            try:
                pyjwt_decode(token)
            except jwt.PyJWTError:
                if stricter:
                    raise SystemExit(f"PyJWT now rejects {name!r}: drop its note")
                continue
            if not stricter:
                raise SystemExit(f"PyJWT accepted invalid fixture {name!r}")
    finally:
        jwt.api_jwt.datetime = real_datetime


def payload_of(token: str):
    segment = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def main():
    self_check()
    fixture = {
        "generator": f"PyJWT {jwt.__version__} via make_pyjwt_fixtures.py",
        "secret": SECRET,
        "now": NOW,
        "leewaySeconds": LEEWAY,
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "valid": [{"name": n, "token": t, "payload": payload_of(t)} for n, t in valid],
        "invalid": [
            {"name": n, "token": t, "error": e, **({"stricterThanPyJWT": s[0]} if s else {})}
            for n, t, e, *s in invalid
        ],
    }
    out = pathlib.Path(__file__).with_name("pyjwt.json")
    out.write_text(json.dumps(fixture, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out} ({len(valid)} valid, {len(invalid)} invalid)")


if __name__ == "__main__":
    main()
