#!/usr/bin/env python3
"""Generate pyjwt_jwk.json: RS256 and ES256 tokens and their JWKs from an independent
implementation (PyJWT with `cryptography`), for JWKPublicKey (Tests/SharedTests/JWKTests.swift).

Every "valid" token must verify with the JWK of its kid; every "invalid" one must not
(a tampered payload, another key's signature, ES256 as DER instead of R||S). The keys are
made afresh on each run, so the output changes every time; it is committed as generated.

    python3 -m venv /tmp/pyjwt && /tmp/pyjwt/bin/pip install "pyjwt[crypto]"   # PyJWT 2.15.1
    /tmp/pyjwt/bin/python Tests/SharedTests/Fixtures/make_pyjwt_jwk_fixtures.py
"""

import json
import pathlib

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from jwt.utils import base64url_decode, base64url_encode

CLAIMS = {"iss": "https://issuer.example", "sub": "248289761001", "aud": "client-1", "iat": 1700000000, "exp": 1700000600}


def jwk(public_key, algorithm, kid, alg):
    key = json.loads(algorithm.to_jwk(public_key))
    key.update({"kid": kid, "use": "sig", "alg": alg})
    return key


def main():
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    other_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    keys = [
        jwk(rsa_key.public_key(), RSAAlgorithm, "rsa-1", "RS256"),
        jwk(ec_key.public_key(), ECAlgorithm, "ec-1", "ES256"),
    ]
    rs = jwt.encode(CLAIMS, rsa_key, algorithm="RS256", headers={"kid": "rsa-1"})
    es = jwt.encode(CLAIMS, ec_key, algorithm="ES256", headers={"kid": "ec-1"})
    valid = [{"name": "RS256", "token": rs, "kid": "rsa-1"}, {"name": "ES256", "token": es, "kid": "ec-1"}]

    header, payload, signature = es.split(".")
    raw = base64url_decode(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    tampered_payload = base64url_encode(json.dumps({**CLAIMS, "sub": "someone-else"}).encode()).decode()
    invalid = [
        {"name": "RS256 tampered payload", "token": ".".join([rs.split(".")[0], tampered_payload, rs.split(".")[2]]), "kid": "rsa-1"},
        {"name": "RS256 by another key", "token": jwt.encode(CLAIMS, other_rsa, algorithm="RS256", headers={"kid": "rsa-1"}), "kid": "rsa-1"},
        {"name": "ES256 as DER", "token": ".".join([header, payload, base64url_encode(der).decode()]), "kid": "ec-1"},
        {"name": "ES256 tampered payload", "token": ".".join([header, tampered_payload, signature]), "kid": "ec-1"},
    ]
    # PyJWT itself agrees: the valid ones verify, the invalid ones do not.
    for case in valid:
        algorithm = RSAAlgorithm if case["kid"] == "rsa-1" else ECAlgorithm
        public = algorithm.from_jwk(json.dumps(next(k for k in keys if k["kid"] == case["kid"])))
        jwt.decode(case["token"], public, algorithms=[case["name"]], audience="client-1", options={"verify_exp": False})
    out = pathlib.Path(__file__).with_name("pyjwt_jwk.json")
    out.write_text(json.dumps({"generator": f"PyJWT {jwt.__version__}", "keys": keys, "valid": valid, "invalid": invalid}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
