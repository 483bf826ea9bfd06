"""Verifies a Portcullis access token the way an independent service would:
PyJWT with its JWKS client, nothing from Portcullis. Prints the claims as
JSON on success; exits 1 with the reason when PyJWT refuses the token."""

import json
import sys

import jwt
from jwt import PyJWKClient


def main() -> int:
    jwks_url, token = sys.argv[1], sys.argv[2]
    try:
        key = PyJWKClient(jwks_url).get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token,
            key.key,
            algorithms=["EdDSA", "ES256", "RS256"],
            audience="portcullis",
            issuer="portcullis",
            options={"require": ["exp", "iat", "sub", "iss", "aud", "jti"]},
        )
    except jwt.PyJWTError as error:
        print(f"refused: {type(error).__name__}: {error}")
        return 1
    print(json.dumps(claims))
    return 0


if __name__ == "__main__":
    sys.exit(main())
