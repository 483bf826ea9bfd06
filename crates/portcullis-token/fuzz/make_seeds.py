#!/usr/bin/env python3
"""Writes the seed corpus of the `verify` fuzz target into seeds/.

Each seed is either a whole token (the first way in) or, for the second way
in, one byte giving the header length followed by header JSON and claims JSON,
which the fuzz body signs with the known HS256 secret of src/fuzzing.rs.
"""
import base64, hashlib, hmac, json, os

SECRET = b"portcullis-fuzzing-secret-0123456789abcdef"
NOW = 1_700_000_000
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
KID = b64(hmac.new(SECRET, b"portcullis/hs256-kid/v1", hashlib.sha256).digest()[:16])

def header(**extra):
    h = {"alg": "HS256", "typ": "at+jwt", "kid": KID}
    h.update(extra)
    return {k: v for k, v in h.items() if v is not None}

def claims(**extra):
    c = {"iss": "portcullis", "aud": "portcullis", "sub": "0190c3a4-7f5e-7b7a-9d1e-2f1d0c9b8a76",
         "jti": "j-1", "sid": "s-1", "iat": NOW, "nbf": NOW, "exp": NOW + 900,
         "email": "ada@example.com", "name": "Ada", "roles": ["user"]}
    c.update(extra)
    return {k: v for k, v in c.items() if v != "DROP"}

def split_seed(h, c):
    hb = h if isinstance(h, bytes) else json.dumps(h).encode()
    cb = c if isinstance(c, bytes) else json.dumps(c).encode()
    return bytes([len(hb)]) + hb + cb

def token(h, c):
    si = b64(json.dumps(h).encode()) + "." + b64(json.dumps(c).encode())
    return (si + "." + b64(hmac.new(SECRET, si.encode(), hashlib.sha256).digest())).encode()

seeds = {
    "valid": split_seed(header(), claims()),
    "valid_token": token(header(), claims()),
    "expired": split_seed(header(), claims(exp=NOW - 61)),
    "expired_in_leeway": split_seed(header(), claims(exp=NOW - 59)),
    "aud_array": split_seed(header(), claims(aud=["other", "portcullis"])),
    "aud_wrong": split_seed(header(), claims(aud=["other"])),
    "iss_wrong": split_seed(header(), claims(iss="evil")),
    "typ_upper": split_seed(header(typ="APPLICATION/AT+JWT"), claims()),
    "typ_jwt": split_seed(header(typ="JWT"), claims()),
    "crit": split_seed(header(crit=["exp"]), claims()),
    "jku": split_seed(header(jku="https://evil.example/jwks.json"), claims()),
    "alg_none": split_seed(header(alg="none"), claims()),
    "no_kid": split_seed(header(kid=None), claims()),
    "exp_string": split_seed(header(), claims(exp=str(NOW + 900))),
    "exp_float": split_seed(header(), claims(exp=NOW + 900.5)),
    "exp_huge": split_seed(header(), claims(exp=1e300)),
    "iat_future": split_seed(header(), claims(iat=NOW + 61)),
    "nbf_future": split_seed(header(), claims(nbf=NOW + 61)),
    "sid_null": split_seed(header(), claims(sid=None)),
    "jti_missing": split_seed(header(), claims(jti="DROP")),
    "duplicate_exp": split_seed(header(), b'{"iss":"portcullis","aud":"portcullis","sub":"u","jti":"j","sid":"s","iat":1700000000,"exp":1,"exp":1800000000}'),
    "not_json": split_seed(b"{", b"}"),
    "empty": b"",
    "dots": b"..",
}
os.makedirs(os.path.join(os.path.dirname(__file__), "seeds"), exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(os.path.dirname(__file__), "seeds", name), "wb") as f:
        f.write(data)
print(len(seeds), "seeds, kid", KID)
