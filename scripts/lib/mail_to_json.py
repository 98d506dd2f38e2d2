#!/usr/bin/env python3
"""mail_to_json.py: what a stored message (an .eml of smtp_sink.py) says, as Python's
`email` package reads it (policy.default: RFC 5322/2047/2231 decoding, defects recorded).
Standard library only, so any python3 runs it.

  mail_to_json.py FILE.eml          JSON on stdout:
    {"from", "to", "subject", "date", "messageId", "mimeVersion": decoded header values
                                      (str, or null when the header is missing),
     "contentType": the whole message's type ("multipart/alternative"),
     "parts": [{"contentType", "charset", "transferEncoding", "text"}]: every leaf part in
              order ("text": the decoded content of a text/* part with CRLF as LF, else
              null; "transferEncoding": the header's value as written, or null),
     "defects": every defect the parser found, of the message, of any part or of any
                header, each "WHERE: DefectName: detail". Raw UTF-8 in a header (RFC 6532,
                sent with SMTPUTF8) is one to Python: UndecodableBytesDefect, and
                NonASCIILocalPartDefect for an address, though the value reads right.
     "longestLine": the longest raw line in bytes, CRLF (or a bare LF) excluded,
     "bareLF": true when any LF in the raw bytes has no CR before it,
     "nonAscii": true when any raw byte is above 127 (8-bit data: a body not in
                 quoted-printable or base64, or UTF-8 headers)}
  mail_to_json.py --text FILE.eml   From, To, Subject, Date and the text/plain part, for a
                                    person (make mail)

Exit status: 0, 1 when the file cannot be read or parsed, 2 on bad arguments.
"""

import email
import email.policy
import json
import re
import sys

HEADERS = [("from", "From"), ("to", "To"), ("subject", "Subject"), ("date", "Date"),
           ("messageId", "Message-ID"), ("mimeVersion", "MIME-Version")]


def defect_text(where, defect):
    detail = str(defect)
    return f"{where}: {type(defect).__name__}" + (f": {detail}" if detail else "")


def header_value(msg, raw, name, where, defects):
    """The decoded value; the raw one (and a defect) when policy.default cannot decode it."""
    try:
        value = msg[name]
    except Exception as e:  # a header the parser chokes on is itself a finding
        defects.append(f"{where} header {name}: cannot decode: {type(e).__name__}: {e}")
        value = raw[name]
        return None if value is None else str(value)
    if value is None:
        return None
    for d in getattr(value, "defects", ()):
        defects.append(defect_text(f"{where} header {name}", d))
    return str(value)


def part_text(part, where, defects):
    if part.get_content_maintype() != "text":
        return None
    try:
        text = part.get_content()
    except Exception as e:  # e.g. an unknown charset
        defects.append(f"{where}: cannot decode the content: {type(e).__name__}: {e}")
        text = (part.get_payload(decode=True) or b"").decode("utf-8", "replace")
    # The parser keeps the wire's CRLF; a reader of the text wants lines.
    return text.replace("\r\n", "\n")


def describe(data):
    msg = email.message_from_bytes(data, policy=email.policy.default)
    raw = email.message_from_bytes(data, policy=email.policy.compat32)
    defects = []
    out = {key: header_value(msg, raw, name, "message", defects) for key, name in HEADERS}
    out["contentType"] = msg.get_content_type()
    parts = []
    for index, part in enumerate(msg.walk()):
        where = "message" if index == 0 else f"part {index}"
        for d in part.defects:
            defects.append(defect_text(where, d))
        # The message's own headers of HEADERS were read above.
        skip = {name.lower() for _, name in HEADERS} if index == 0 else set()
        for name in dict.fromkeys(part.keys()):
            if name.lower() in skip:
                continue
            try:
                values = part.get_all(name)
            except Exception as e:  # a header the parser chokes on is itself a finding
                defects.append(f"{where} header {name}: cannot decode: {type(e).__name__}: {e}")
                continue
            for value in values:
                for d in getattr(value, "defects", ()):
                    defects.append(defect_text(f"{where} header {name}", d))
        if part.is_multipart():
            continue
        cte = part.get("Content-Transfer-Encoding")
        parts.append({
            "contentType": part.get_content_type(),
            "charset": part.get_content_charset(),
            "transferEncoding": None if cte is None else str(cte),
            "text": part_text(part, where, defects),
        })
    out["parts"] = parts
    out["defects"] = defects
    lines = data.split(b"\n")
    out["longestLine"] = max(len(line[:-1] if line.endswith(b"\r") else line) for line in lines)
    out["bareLF"] = re.search(rb"(?<!\r)\n", data) is not None
    out["nonAscii"] = re.search(rb"[\x80-\xff]", data) is not None
    return out


def as_text(path, info):
    lines = [f"File:    {path}"]
    for key, label in (("from", "From"), ("to", "To"), ("subject", "Subject"), ("date", "Date")):
        lines.append(f"{label + ':':<8} {info[key] if info[key] is not None else '(none)'}")
    plain = [p for p in info["parts"] if p["contentType"] == "text/plain"]
    lines.append("")
    if plain:
        lines.append(plain[0]["text"].rstrip("\n"))
    else:
        kinds = ", ".join(p["contentType"] for p in info["parts"]) or "none"
        lines.append(f"(no text/plain part; parts: {kinds})")
    return "\n".join(lines)


def main(argv):
    text = False
    if argv and argv[0] == "--text":
        text = True
        argv = argv[1:]
    if len(argv) != 1 or argv[0].startswith("-"):
        print("usage: mail_to_json.py [--text] FILE.eml", file=sys.stderr)
        return 2
    path = argv[0]
    try:
        with open(path, "rb") as f:
            data = f.read()
        info = describe(data)
    except Exception as e:
        print(f"mail_to_json: {path}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    out = as_text(path, info) if text else json.dumps(info, ensure_ascii=False, indent=1)
    # UTF-8 whatever the locale says.
    sys.stdout.buffer.write((out + "\n").encode("utf-8", "replace"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
