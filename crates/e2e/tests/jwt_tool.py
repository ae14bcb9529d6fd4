"""PyJWT, an independent JWT implementation, against Kino's tokens.

  jwt_tool.py verify JWKS_URL TOKEN ISSUER AUDIENCE   -> prints the verified claims (JSON)
  jwt_tool.py forge PEM_FILE KID CLAIMS_JSON [ALG]    -> prints a token signed with PEM_FILE
"""
import json
import sys

import jwt


def verify(jwks_url, token, issuer, audience):
    # Only the JWKS document: the key is picked by the token's kid.
    key = jwt.PyJWKClient(jwks_url).get_signing_key_from_jwt(token)
    claims = jwt.decode(token, key.key, algorithms=["EdDSA"], issuer=issuer, audience=audience,
                        options={"require": ["exp", "iss", "aud", "sub"]})
    print(json.dumps(claims))


def forge(pem_file, kid, claims_json, alg="EdDSA"):
    claims = json.loads(claims_json)
    if alg == "none":
        print(jwt.encode(claims, None, algorithm="none", headers={"kid": kid}))
        return
    with open(pem_file) as f:
        key = f.read()
    print(jwt.encode(claims, key, algorithm=alg, headers={"kid": kid}))


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {"verify": verify, "forge": forge}[command](*args)
