#!/usr/bin/env python3
"""Write the seed corpora under tests/fuzz/corpus/<harness>/.

The seeds are committed; this script documents where each came from and
rewrites them (run it from anywhere: python3 tests/fuzz/make_seeds.py).
It only ever writes the files it names, so hand-added seeds stay.
"""
import hashlib
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
CORPUS = os.path.join(HERE, "corpus")

# Must match tests/fuzz/fuzz_keys.c.
FIXED_KEY = "sk_test_000102030405060708090a0b0c0d0e0f1011121314151617"
FIXED_KEY_REVOKED = "sk_prod_ffeeddccbbaa99887766554433221100ffeeddccbbaa9988"


def write(harness, name, data):
    d = os.path.join(CORPUS, harness)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def read(path):
    with open(os.path.join(ROOT, path), "rb") as f:
        return f.read()


# ---- JSON bodies (shared by fuzz_json_body and fuzz_pyconv) ---------------

README_BODY = b'{"code": "result = data[\\"x\\"] + data[\\"y\\"]", "data": {"x": 1, "y": 2}}'


def nested(depth, open_="[", close="]", inner="1"):
    return (open_ * depth + inner + close * depth).encode()


def nested_obj(depth):
    return ('{"a":' * depth + "1" + "}" * depth).encode()


BODIES = {
    "readme_example": README_BODY,
    "readme_example_compact": b'{"code":"result = data[\'x\'] + data[\'y\']","data":{"x":1,"y":2}}',
    "code_only": b'{"code":"result = 1"}',
    "all_limits": b'{"code":"print(1)","data":null,"limits":{"timeout_ms":100,"cpu_ms":100,'
                  b'"memory_mb":16,"output_bytes":1,"result_bytes":1}}',
    "limit_too_loose": b'{"code":"x","limits":{"timeout_ms":999999999}}',
    "limit_float": b'{"code":"x","limits":{"cpu_ms":1.5}}',
    "limit_exp": b'{"code":"x","limits":{"cpu_ms":1e3}}',
    "limit_zero": b'{"code":"x","limits":{"output_bytes":0}}',
    "limit_negative": b'{"code":"x","limits":{"result_bytes":-1}}',
    "limit_huge_int": b'{"code":"x","limits":{"memory_mb":99999999999999999999999999999999}}',
    "limit_string": b'{"code":"x","limits":{"memory_mb":"64"}}',
    "limit_unknown": b'{"code":"x","limits":{"body_bytes":10}}',
    "limit_memory_15": b'{"code":"x","limits":{"memory_mb":15}}',
    "limits_not_object": b'{"code":"x","limits":[1,2]}',
    "unknown_field": b'{"code":"x","dta":{}}',
    "code_missing": b'{"data":{"x":1}}',
    "code_not_string": b'{"code":12}',
    "code_null": b'{"code":null}',
    "duplicate_keys": b'{"code":"a","code":"b","data":{"k":1,"k":2}}',
    "big_ints": b'{"code":"x","data":[18446744073709551617,-18446744073709551617,'
                b'1267650600228229401496703205376,0,-0,01]}',
    "int_63_digits": b'{"code":"x","data":[' + b"1" * 63 + b"]}",
    "int_64_digits": b'{"code":"x","data":[' + b"1" * 64 + b"]}",
    "floats": b'{"code":"x","data":[0.30000000000000004,-0.0,1e-400,1.7976931348623157e308,'
              b'5e-324,1E5,1.5e+3,2.5E-3]}',
    "float_overflow": b'{"code":"x","data":{"f":1e400}}',
    "float_lax": b'{"code":"x","data":[1.,-.5]}',
    "escapes": b'{"code":"print(\\"a\\\\tb\\\\n\\")","data":"\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00"}',
    "nul_escape": b'{"code":"x","data":"a\\u0000b"}',
    "nul_escape_key": b'{"code":"x","data":{"\\u0000":1}}',
    "escaped_backslash_u0000": b'{"code":"x","data":"\\\\u0000"}',
    "raw_control": b'{"code":"x\x01","data":1}',
    "raw_tab": b'{"code":"\tx"}',
    "raw_nul": b'{"code":"x\x00y"}',
    "lone_high_surrogate": b'{"code":"x","data":"\\ud800"}',
    "lone_low_surrogate": b'{"code":"x","data":"\\udc00"}',
    "utf8_valid": '{"code":"x","data":"é€𝄞 \u07ff \uffff \U0010ffff"}'.encode(),
    "utf8_overlong": b'{"code":"x","data":"\xc0\x80"}',
    "utf8_surrogate": b'{"code":"x","data":"\xed\xa0\x80"}',
    "utf8_too_big": b'{"code":"x","data":"\xf4\x90\x80\x80"}',
    "utf8_truncated": b'{"code":"x","data":"\xe2\x82"}',
    "utf8_bom": b'\xef\xbb\xbf{"code":"x"}',
    "trailing_garbage": b'{"code":"x"} trailing',
    "trailing_value": b'{"code":"x"}{"code":"y"}',
    "not_object_array": b'[{"code":"x"}]',
    "not_object_number": b"42",
    "not_object_string": b'"code"',
    "empty": b"",
    "whitespace": b" \t\r\n",
    "truncated": b'{"code":"x","data":[1,2',
    "nested_999": b'{"code":"x","data":' + nested(998) + b"}",
    "nested_1000": nested(1000),
    "nested_1001": nested(1001),
    "nested_obj_500": b'{"code":"x","data":' + nested_obj(500) + b"}",
    "mixed": b'{"code":"x","data":{"a":[1,"two",3.0,true,false,null,{"b":[]},{}],"":""}}',
}

# Values for fuzz_pyconv beyond the bodies: any JSON value converts.
VALUES = {
    "top_int": b"18446744073709551617",
    "top_int_100_digits": b"1" * 100,
    "top_int_4300_digits": b"9" * 4300,
    "top_int_4301_digits": b"9" * 4301,
    "top_neg_zero_int": b"-0",
    "top_float": b"0.1",
    "top_float_neg_zero": b"-0.0",
    "top_string": b'"hello \\u00e9 \\ud83d\\ude00 \\n"',
    "top_null": b"null",
    "top_true": b"true",
    "top_trailing_minus": b"5-3",
    "top_number_space_number": b"1 2",
    "list_of_types": b'[null,true,false,0,-1,1.5,"s",[],{}]',
    "dict_dup": b'{"a":1,"a":[1,2],"b":{"a":{}}}',
    "unicode_keys": '{"é":1,"𝄞":2,"":3}'.encode(),
    "big_int_list": b"[" + b",".join([b"9" * 63, b"-" + b"9" * 62, b"0"]) + b"]",
    "control_escapes": b'"\\u0001\\u001f\\u007f\\b\\f"',
    "raw_del": b'"a\x7fb"',
    # json.loads keeps only the last "a"; pyconv converts (and refuses) the first.
    "dup_key_shadows_overflow": b'{"a":1e4001,"a":[1,2],"b":{"a":{}}}',
    "nul_byte_after_number": b"[1\x00,2]",
}


def http(head, body=b""):
    return head.replace(b"\n", b"\r\n") + b"\r\n" + body


def post(body, extra=b"", cl=None):
    cl = len(body) if cl is None else cl
    return http(b"POST /execute HTTP/1.1\nHost: localhost:8000\nX-API-Key: sk_test_0001\n"
                b"Content-Type: application/json\n" + extra +
                b"Content-Length: " + str(cl).encode() + b"\n", body)


def seeds_http():
    """Each seed is one control byte (the read() size cap, 0 = none; see
    fuzz_http.c) and then the bytes the client sends."""
    seeds = {}

    def add(name, data):
        seeds[name] = data

    h = "fuzz_http"
    add("readme_curl", post(README_BODY, b"User-Agent: curl/7.88.1\nAccept: */*\n"))
    add("health_11", http(b"GET /health HTTP/1.1\nHost: x\n"))
    add("health_10", http(b"GET /health HTTP/1.0\n"))
    add("health_bare_lf", b"GET /health HTTP/1.1\nHost: x\n\n")
    add("health_mixed_eol", b"GET /health HTTP/1.1\r\nHost: x\n\r\n")
    add("metrics", http(b"GET /metrics HTTP/1.1\nHost: x\nX-API-Key: sk_test_0001\n"))
    add("query_fragment", http(b"GET /health?x=1&y=%20#frag HTTP/1.1\nHost: x\n"))
    add("absolute_form", http(b"GET http://x/health HTTP/1.1\nHost: x\n"))
    add("asterisk_form", http(b"OPTIONS * HTTP/1.1\nHost: x\n"))
    add("post_no_length", http(b"POST /execute HTTP/1.1\nHost: x\nX-API-Key: k\n"))
    add("post_zero_length", post(b""))
    add("post_short_body", post(b'{"code":"x"}', cl=100))
    add("post_pipelined", post(b'{"code":"x"}') + b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    add("post_too_large", post(b"{}", cl=1048577))
    add("post_limit_exact", post(b"{}", cl=1048576))
    add("cl_duplicate", post(b"{}", b"Content-Length: 2\n"))
    add("cl_duplicate_differs", post(b"{}", b"content-length: 3\n"))
    add("cl_plus", http(b"POST /execute HTTP/1.1\nHost: x\nContent-Length: +2\n", b"{}"))
    add("cl_negative", http(b"POST /execute HTTP/1.1\nHost: x\nContent-Length: -1\n"))
    add("cl_hex", http(b"POST /execute HTTP/1.1\nHost: x\nContent-Length: 0x2\n", b"{}"))
    add("cl_list", http(b"POST /execute HTTP/1.1\nHost: x\nContent-Length: 2, 2\n", b"{}"))
    add("cl_16_digits", http(b"POST /execute HTTP/1.1\nHost: x\nContent-Length: 0000000000000002\n", b"{}"))
    add("cl_15_digits", http(b"POST /execute HTTP/1.1\nHost: x\nContent-Length: 999999999999999\n"))
    add("cl_empty", http(b"POST /execute HTTP/1.1\nHost: x\nContent-Length:\n"))
    add("cl_and_te", post(b"{}", b"Transfer-Encoding: chunked\n"))
    add("te_chunked", http(b"POST /execute HTTP/1.1\nHost: x\nTransfer-Encoding: chunked\n",
                                b"2\r\n{}\r\n0\r\n\r\n"))
    add("obs_fold", http(b"GET /health HTTP/1.1\nHost: x\nX-A: a\n b\n"))
    add("header_no_colon", http(b"GET /health HTTP/1.1\nHost x\n"))
    add("header_empty_name", http(b"GET /health HTTP/1.1\n: x\n"))
    add("header_space_before_colon", http(b"GET /health HTTP/1.1\nHost : x\n"))
    add("header_control_char", http(b"GET /health HTTP/1.1\nHost: x\x01y\n"))
    add("header_del", http(b"GET /health HTTP/1.1\nHost: x\x7fy\n"))
    add("header_tab_value", http(b"GET /health HTTP/1.1\nHost:\tx\t \nX-Request-Id: abc-123_.:Z\n"))
    add("header_cr_in_value", b"GET /health HTTP/1.1\r\nHost: x\r\r\n\r\n")
    add("request_id_long", http(b"GET /health HTTP/1.1\nHost: x\nX-Request-Id: " + b"a" * 65 + b"\n"))
    add("nul_in_head", http(b"GET /health HTTP/1.1\nHost: x\x00\n"))
    add("nul_in_body", post(b'{"code":"\x00"}'))
    add("http09", b"GET /\r\n\r\n")
    add("http2", http(b"GET / HTTP/2.0\nHost: x\n"))
    add("http_lower", http(b"GET / http/1.1\nHost: x\n"))
    add("version_trailing_space", http(b"GET / HTTP/1.1 \nHost: x\n"))
    add("no_host_11", http(b"GET /health HTTP/1.1\n"))
    add("double_space", http(b"GET  /health HTTP/1.1\nHost: x\n"))
    add("leading_crlf", b"\r\n" + http(b"GET /health HTTP/1.1\nHost: x\n"))
    add("method_invalid", http(b"G(T /health HTTP/1.1\nHost: x\n"))
    add("target_not_slash", http(b"GET health HTTP/1.1\nHost: x\n"))
    add("target_high_byte", http(b"GET /h\xc3\xa9 HTTP/1.1\nHost: x\n"))
    add("empty", b"")
    add("only_blank_line", b"\r\n\r\n")
    add("unterminated_head", b"GET /health HTTP/1.1\r\nHost: x\r\n")
    many = b"".join(b"X-H%d: v\n" % i for i in range(100))
    add("headers_100", http(b"GET /health HTTP/1.0\n" + many))
    add("headers_101", http(b"GET /health HTTP/1.0\nHost: x\n" + many))
    add("head_8192", http(b"GET /health HTTP/1.1\nHost: x\nX-Pad: " +
                              b"a" * (8192 - 44) + b"\n"))
    add("head_too_large", http(b"GET /health HTTP/1.1\nHost: x\nX-Pad: " + b"a" * 8200 + b"\n"))
    for name, data in seeds.items():
        write(h, name, b"\x00" + data)
    # The same requests arriving in small pieces: heads and blank lines split
    # across reads.
    for cap, names in ((1, ["readme_curl", "health_bare_lf", "health_mixed_eol", "post_pipelined",
                            "only_blank_line", "header_cr_in_value"]),
                       (2, ["readme_curl", "health_11", "post_short_body", "leading_crlf"]),
                       (3, ["readme_curl", "health_mixed_eol", "head_8192"]),
                       (5, ["health_10", "cl_duplicate", "head_too_large"]),
                       (255, ["readme_curl", "headers_101"])):
        for name in names:
            write(h, "split%d_%s" % (cap, name), bytes([cap]) + seeds[name])


def seeds_json_body():
    for name, data in BODIES.items():
        write("fuzz_json_body", name, data)


def seeds_pyconv():
    for name, data in BODIES.items():
        write("fuzz_pyconv", name, data)
    for name, data in VALUES.items():
        write("fuzz_pyconv", name, data)


# Python literals for fuzz_pyresult: results a snippet could return.
RESULTS = {
    "readme_int": "3",
    "readme_float": "3.0",
    "float_repr": "0.30000000000000004",
    "neg_zero": "-0.0",
    "float_extremes": "[1.7976931348623157e308, 5e-324, -2.2250738585072014e-308, 1e16, 1e-7]",
    "inf": "1e999",
    "neg_inf": "-1e999",
    "inf_in_list": "[1, 1e999, -1e999]",
    "two_pow_100": "1267650600228229401496703205376",
    "u64_plus_one": "18446744073709551618",
    "int_4300_digits": "9" * 4300,
    "hex_int_5000_digits": "0x" + "f" * 4200,
    "neg_big": "-" + "1" * 300,
    "tuple": "(1, 'a', None, True, False)",
    "nested_tuple_list": "([(), []], {'k': ({},)})",
    "dict_int_key": "{1: 'a'}",
    "dict_tuple_key": "{(1, 2): 'a'}",
    "dict_none_key": "{None: 1}",
    "dict_str_keys": r"{'': 0, 'a\x00b': 1, '\u00e9': [2]}",
    "set": "{1, 2}",
    "empty_set_in_list": "[set()]",
    "bytes": "b'abc'",
    "complex": "1+2j",
    "nul_string": r"'a\x00b\x00'",
    "only_nul": r"'\x00'",
    "control_chars": r"""'\x01\x1f\x7f\t\n\r\x08\x0c"\\/'""",
    "lone_surrogate": r"'\ud800'",
    "surrogate_in_key": r"{'\udfff': 1}",
    "astral": r"'\U0001f600 \u2028 \uffff'",
    "nested_100": "[" * 100 + "]" * 100,
    "mixed": "{'a': [1, 2.5, 'x', None, (True, False)], 'b': {'c': -0.0}}",
}


def key_entry(key, i, env="test", revoked=None, **extra):
    e = {
        "id": "key_%016x" % (0x1000 + i),
        "name": "Client %d" % i,
        "description": "",
        "env": env,
        "created": "2026-11-26T12:00:00Z",
        "revoked_at": revoked,
        "prefix": key[:12],
        "hash": "sha256:" + hashlib.sha256(key.encode()).hexdigest(),
    }
    e.update(extra)
    return e


def keys_file(entries, **top):
    d = {"version": 1, "keys": entries}
    d.update(top)
    return json.dumps(d, indent=2).encode() + b"\n"


def seeds_pyresult():
    for name, src in RESULTS.items():
        write("fuzz_pyresult", name, src)


def seeds_keys():
    h = "fuzz_keys"
    sample = read("api_keys.json.sample")
    write(h, "sample", sample)
    good = key_entry(FIXED_KEY, 1)
    revoked = key_entry(FIXED_KEY_REVOKED, 2, env="prod", revoked="2026-11-27T00:00:00Z")
    write(h, "fixed_keys", keys_file([good, revoked]))
    write(h, "fixed_keys_compact", json.dumps({"version": 1, "keys": [good, revoked]},
                                              separators=(",", ":")).encode())
    write(h, "overrides", keys_file([key_entry(FIXED_KEY, 1, rate="120/min", concurrency=8,
                                               scope=["execute", "admin"])]))
    for i, rate in enumerate(["1/s", "1000000/day", "5/sec", "60/hour", "0/min", "1000001/s",
                              "-1/min", "+1/min", " 1/min", "1/fortnight", "1/", "/min",
                              "99999999999999999999/min"]):
        write(h, "rate_%d" % i, keys_file([key_entry(FIXED_KEY, 1, rate=rate)]))
    for i, conc in enumerate([1, 10000, 0, 10001, 1.5, "8", None, 1e300, -1]):
        write(h, "concurrency_%d" % i, keys_file([key_entry(FIXED_KEY, 1, concurrency=conc)]))
    for i, scope in enumerate([[], ["admin"], ["execute", "execute"], ["admin,execute"],
                               ["execute,"], [""], "execute", [1], None]):
        write(h, "scope_%d" % i, keys_file([key_entry(FIXED_KEY, 1, scope=scope)]))
    write(h, "empty_ring", b'{"version":1,"keys":[]}')
    write(h, "version_2", b'{"version":2,"keys":[]}')
    write(h, "version_string", b'{"version":"1","keys":[]}')
    write(h, "version_float", b'{"version":1.0,"keys":[]}')
    write(h, "keys_not_array", b'{"version":1,"keys":{}}')
    write(h, "entry_not_object", b'{"version":1,"keys":[1]}')
    write(h, "top_array", b'[{"version":1}]')
    write(h, "trailing_garbage", keys_file([good]) + b"x")
    write(h, "trailing_whitespace", keys_file([good]) + b" \t\r\n")
    write(h, "trailing_nul", keys_file([good]) + b"\x00")
    write(h, "truncated", keys_file([good, revoked])[:-40])
    write(h, "empty", b"")
    write(h, "duplicate_id", keys_file([good, dict(key_entry(FIXED_KEY_REVOKED, 1))]))
    write(h, "duplicate_hash", keys_file([good, key_entry(FIXED_KEY, 2)]))
    for field in ["id", "name", "description", "env", "created", "revoked_at", "prefix", "hash"]:
        e = dict(good)
        del e[field]
        write(h, "missing_" + field, keys_file([e]))
        e = dict(good)
        e[field] = 1
        write(h, "wrong_type_" + field, keys_file([e]))
    bad_values = {
        "id_upper": ("id", "key_0123456789ABCDEF"),
        "id_short": ("id", "key_0123"),
        "id_long": ("id", "key_0123456789abcdef0"),
        "env_other": ("env", "staging"),
        "name_empty": ("name", ""),
        "created_empty": ("created", ""),
        "revoked_empty": ("revoked_at", ""),
        "prefix_empty": ("prefix", ""),
        "hash_upper": ("hash", good["hash"].upper().replace("SHA256", "sha256")),
        "hash_short": ("hash", good["hash"][:-2]),
        "hash_long": ("hash", good["hash"] + "00"),
        "hash_no_tag": ("hash", good["hash"][7:]),
        "hash_nul": ("hash", good["hash"][:20] + "\u0000" + good["hash"][21:]),
    }
    for name, (field, value) in bad_values.items():
        e = dict(good)
        e[field] = value
        write(h, name, keys_file([e]))
    write(h, "many_entries", keys_file([key_entry("sk_test_%048x" % i, i) for i in range(40)]))


def seeds_config():
    h = "fuzz_config"
    sample = read("pyexec.conf.sample")
    write(h, "sample", sample)
    write(h, "sample_crlf", sample.replace(b"\n", b"\r\n"))
    write(h, "empty", b"")
    write(h, "all_settings",
          b"[global]\nrequest_timeout_ms = 100\nmax_concurrent = 100000\nuser = pyexec\n"
          b"[test]\ntimeout_ms=10\ncpu_ms=600000\nmemory_mb=16\noutput_bytes=0\n"
          b"result_bytes=16\nbody_bytes=64\nrate_limit=1\nrate_window_s=86400\nconcurrency=10000\n"
          b"[prod]\nrate_limit = 1000000\nrate_window_s = 1\nconcurrency = 1\n")
    write(h, "no_final_newline", b"[test]\ntimeout_ms = 2000")
    write(h, "comment_only", b"# nothing\n   # indented\n\t\n")
    write(h, "inline_comment", b"[prod] # the prod env\ncpu_ms = 5000#x\n")
    write(h, "unknown_section", b"[staging]\n")
    write(h, "section_empty", b"[]\n")
    write(h, "section_unclosed", b"[test\n")
    write(h, "section_trailing", b"[test] x\n")
    write(h, "unknown_setting", b"[test]\nmemory = 1\n")
    write(h, "unknown_global", b"timeout_ms = 100\n")
    write(h, "no_equals", b"[test]\ntimeout_ms 100\n")
    write(h, "empty_value", b"[test]\ntimeout_ms =\n")
    write(h, "below_min", b"[test]\nmemory_mb = 15\n")
    write(h, "above_max", b"[test]\nmemory_mb = 65537\n")
    write(h, "plus_sign", b"[test]\nmemory_mb = +64\n")
    write(h, "hex", b"[test]\nmemory_mb = 0x40\n")
    write(h, "trailing_junk", b"[test]\nmemory_mb = 64MB\n")
    write(h, "long_overflow", b"[test]\nmemory_mb = 99999999999999999999999\n")
    write(h, "negative", b"[test]\noutput_bytes = -1\n")
    write(h, "user_empty", b"user =\n")
    write(h, "user_63", b"user = " + b"u" * 63 + b"\n")
    write(h, "user_64", b"user = " + b"u" * 64 + b"\n")
    write(h, "user_spaces", b"user =   some one  \t\n")
    write(h, "line_511", b"# " + b"x" * 509 + b"\n")
    write(h, "line_512", b"# " + b"x" * 510 + b"\n")
    write(h, "nul_in_line", b"[test]\ncpu_ms = 10\x00\n")
    write(h, "cr_only", b"[test]\rcpu_ms = 10\r")
    write(h, "two_equals", b"user = a=b\n")
    write(h, "global_after_env", b"[test]\ncpu_ms = 10\n[global]\nuser = x\n")


def main():
    seeds_http()
    seeds_json_body()
    seeds_pyconv()
    seeds_pyresult()
    seeds_keys()
    seeds_config()
    n = sum(len(files) for _, _, files in os.walk(CORPUS))
    print("wrote seeds; %d files under %s" % (n, os.path.relpath(CORPUS, ROOT)), file=sys.stderr)


if __name__ == "__main__":
    main()
