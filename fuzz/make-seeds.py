#!/usr/bin/env python3
"""Writes the committed seed corpora under fuzz/corpus/<target>/ (small inputs written here,
nothing copied from elsewhere). Run again after changing it; the output is deterministic."""

import json
import os
import struct
import uuid
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    path = os.path.join(ROOT, target)
    os.makedirs(path, exist_ok=True)
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(os.path.join(path, name), "wb") as f:
        f.write(data)


# --- evtx_file: file and chunk headers with right checksums, no records --------------------
def evtx_file_header(chunks):
    head = b"ElfFile\0" + struct.pack("<QQQIHHHH", 0, max(chunks - 1, 0), 1, 128, 1, 3, 4096, chunks)
    head += b"\0" * (120 - len(head))
    head += struct.pack("<II", 0, zlib.crc32(head))
    return head + b"\0" * (4096 - len(head))


def evtx_chunk(first_id, last_id):
    # A record: magic, size, id, FILETIME, a binary XML fragment header, the size again.
    record = b"\x2a\x2a\0\0" + struct.pack("<IQQ", 40, first_id, 132000000000000000)
    record += b"\x0f\x01\x01\x00" + b"\x00" * 8 + struct.pack("<I", 40)
    free_offset = 512 + len(record)
    head = b"ElfChnk\0" + struct.pack("<QQQQIII", first_id, last_id, first_id, last_id, 128, 512, free_offset)
    head += struct.pack("<I", zlib.crc32(record)) + b"\0" * 64 + struct.pack("<I", 0)
    header = bytearray(head + b"\0" * (512 - len(head)))
    header[124:128] = struct.pack("<I", zlib.crc32(bytes(header[:120] + header[128:512])))
    chunk = bytes(header) + record
    return chunk + b"\0" * (65536 - len(chunk))


put("evtx_file", "header-only.evtx", evtx_file_header(0))
put("evtx_file", "header-cut-short.evtx", evtx_file_header(1)[:300])
put("evtx_file", "one-chunk.evtx", evtx_file_header(1) + evtx_chunk(1, 1))
put("evtx_file", "bad-chunk-magic.evtx", evtx_file_header(1) + b"ElfChnX\0" + b"\0" * 600)

# --- event_xml ------------------------------------------------------------------------------
NS = 'xmlns="http://schemas.microsoft.com/win/2004/08/events/event"'
SYSMON = f"""<Event {NS}><System><Provider Name="Microsoft-Windows-Sysmon" Guid="{{5770385f-c22a-43e0-bf4c-06f5698ffbd9}}"/>
<EventID>1</EventID><Version>5</Version><Level>4</Level><Task>1</Task><Opcode>0</Opcode><Keywords>0x8000000000000000</Keywords>
<TimeCreated SystemTime="2026-01-01T10:00:00.1234567Z"/><EventRecordID>42</EventRecordID><Correlation/>
<Execution ProcessID="2000" ThreadID="3000"/><Channel>Microsoft-Windows-Sysmon/Operational</Channel><Computer>ws1.example</Computer>
<Security UserID="S-1-5-18"/></System><EventData><Data Name="UtcTime">2026-01-01 10:00:00.123</Data>
<Data Name="ProcessId">4242</Data><Data Name="Image">C:\\Windows\\System32\\cmd.exe</Data>
<Data Name="CommandLine">cmd.exe /c "whoami &amp; hostname"</Data><Data Name="User">EXAMPLE\\alice</Data>
<Data Name="Hashes">SHA256=AAAA,MD5=BBBB</Data><Data Name="ParentImage">C:\\Windows\\explorer.exe</Data></EventData></Event>"""
SECURITY = f"""<Event {NS}><System><Provider Name="Microsoft-Windows-Security-Auditing"/><EventID Qualifiers="0">4624</EventID>
<TimeCreated SystemTime="2026-01-01T10:00:01Z"/><EventRecordID>7</EventRecordID><Channel>Security</Channel><Computer>dc1</Computer></System>
<EventData><Data Name="TargetUserName">bob</Data><Data Name="LogonType">10</Data><Data Name="IpAddress">10.0.0.5</Data>
<Data Name="IpPort">51000</Data><Data>unnamed</Data><Data Name="Empty"/></EventData></Event>"""
USERDATA = f"""<Event {NS}><System><Provider Name="Microsoft-Windows-Eventlog"/><EventID>1102</EventID>
<TimeCreated SystemTime="2026-01-01T10:00:02Z"/><EventRecordID>8</EventRecordID><Channel>Security</Channel><Computer>dc1</Computer></System>
<UserData><LogFileCleared xmlns="http://manifests.microsoft.com/win/2004/08/windows/eventlog"><SubjectUserName>eve</SubjectUserName>
<SubjectDomainName>EX</SubjectDomainName></LogFileCleared></UserData><RenderingInfo Culture="en-US"><Message>The log was cleared.</Message></RenderingInfo></Event>"""
put("event_xml", "sysmon-1.xml", SYSMON)
put("event_xml", "security-4624.xml", SECURITY)
put("event_xml", "userdata-1102.xml", USERDATA)
put("event_xml", "events-many.xml", f'<?xml version="1.0" encoding="utf-8"?>\n<Events>{SYSMON}{SECURITY}</Events>')
put("event_xml", "utf16le-bom.xml", b"\xff\xfe" + SECURITY.encode("utf-16-le"))
put("event_xml", "cdata-entities.xml", f"<Event {NS}><System><EventID>1</EventID><Channel>x</Channel></System><EventData><Data Name=\"a\"><![CDATA[<b>]]>&lt;&#x41;&#65;</Data></EventData></Event>")
put("event_xml", "cut-short.xml", SYSMON[:200])


# --- ingest_json: selector byte (bit 0: NDJSON, bit 1: operator sender, bit 2: protobuf), then
# the body ------------------------------------------------------------------------------------
def event(n, **extra):
    doc = {
        "@timestamp": "2026-05-01T12:00:00.123Z",
        "event": {"id": f"0196a000-0000-7000-8000-{n:012d}", "kind": "event", "category": ["process"], "type": ["start"]},
        "host": {"name": "ws1", "ip": ["10.0.0.1", "::1"]},
        "agent": {"id": "fuzz-agent"},
        "process": {"pid": 42, "executable": "/usr/bin/curl", "command_line": "curl x", "parent": {"pid": 1}},
    }
    doc.update(extra)
    return doc


put("ingest_json", "array.json", b"\x00" + json.dumps([event(1), event(2, user={"name": "root"})]).encode())
put("ingest_json", "object.json", b"\x02" + json.dumps(event(3)).encode())
put("ingest_json", "lines.ndjson", b"\x01" + "\n".join([json.dumps(event(4)), "", "not json", json.dumps(event(4))]).encode() + b"\r\n")
put("ingest_json", "wrong-agent.json", b"\x00" + json.dumps([event(5, agent={"id": "someone-else"}), 17, "x", None]).encode())
# protobuf (crates/wire/proto/batch.proto), encoded by hand: no protobuf library needed here.
def varint(n):
    out = b""
    while True:
        byte, n = n & 0x7F, n >> 7
        out += bytes([byte | (0x80 if n else 0)])
        if not n:
            return out


def field(number, value):
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    if isinstance(value, str):
        value = value.encode()
    return varint(number << 3 | 2) + varint(len(value)) + value


def pb_string_value(text):
    return field(6, text)


def pb_event(n):
    meta = field(1, uuid.UUID(f"0196a000-0000-7000-8000-{n:012d}").bytes) + field(2, "event")
    process = field(1, 42) + field(4, "curl x")
    other = field(1, field(1, "agent") + field(2, field(8, field(1, field(1, "id") + field(2, pb_string_value("fuzz-agent"))))))
    stamp = varint(1 << 3 | 1) + struct.pack("<q", 1_777_636_800_123_000_000)
    return stamp + field(2, meta) + field(6, process) + field(15, other)


put("ingest_json", "batch.protobuf", b"\x04" + field(1, pb_event(6)) + field(1, pb_event(7)))
put("ingest_json", "nested.json", b"\x00\xef\xbb\xbf" + b'[{"a":[[[],{}],{"b":{"c":[1.5e300,-0,true]}}]}]')

# --- sigma_rule: YAML rules; `!` then a bare condition -----------------------------------------
put("sigma_rule", "process.yml", """title: Encoded PowerShell
id: 5e8d3c1a-0000-4000-8000-000000000001
status: test
logsource:
  product: windows
  category: process_creation
detection:
  selection:
    Image|endswith: '\\\\powershell.exe'
    CommandLine|contains|all:
      - ' -enc'
      - 'A'
  filter:
    User|startswith: 'NT AUTHORITY'
  condition: selection and not filter
level: high
tags: [attack.execution, attack.t1059.001]
""")
put("sigma_rule", "modifiers.yml", """title: Modifiers
id: 5e8d3c1a-0000-4000-8000-000000000002
logsource: {product: linux, service: auth}
detection:
  sel_ip:
    source.ip|cidr: ['10.0.0.0/8', 'fe80::/10']
  sel_re:
    user.name|re: '^(root|admin)$'
  sel_b64:
    CommandLine|base64offset|contains: 'http'
  sel_dash:
    CommandLine|windash|contains: '-exec'
  sel_num:
    source.port|gte: 22
  sel_null:
    ParentImage: null
  keywords:
    - 'failure'
    - '*passw?rd*'
  condition: 1 of sel_* or (keywords and all of them)
fields: [user.name]
falsepositives: [none]
level: medium
""")
put("sigma_rule", "global-and-correlation.yml", """action: global
title: Base
logsource: {product: windows, service: security}
level: low
---
id: 5e8d3c1a-0000-4000-8000-000000000003
name: failed_logon
detection:
  sel: {EventID: 4625}
  condition: sel
---
title: Many failures
correlation:
  type: event_count
  rules: [failed_logon]
  group-by: [TargetUserName]
  timespan: 5m
  condition: {gte: 10}
level: high
""")
put("sigma_rule", "filter.yml", """title: Not for admins
filter:
  rules: [5e8d3c1a-0000-4000-8000-000000000001]
  selection:
    User: admin
  condition: not selection
logsource: {product: windows}
""")
put("sigma_rule", "placeholder.yml", """title: Expand
logsource: {product: windows}
detection:
  sel:
    User|expand: '%admins%'
  condition: sel | count() by User > 3
""")
put("sigma_rule", "condition-1.txt", "!sel1 and not (filter1 or 1 of filter_*) or all of them")
put("sigma_rule", "condition-2.txt", "!((a or b) and not c) and 1 of them and all of sel*")

# --- event_query ----------------------------------------------------------------------------
for n, q in enumerate([
    'process.name:powershell.exe AND NOT user.name:SYSTEM',
    '(event.code:4688 OR event.code:1) "encoded command"',
    'file.path:C:\\Users\\*\\AppData\\*   winlog.event_data.LogonType:>=10   host.name:*',
    'event.kind:alert source.port:<1024 destination.port:>49151 process.pid:<=4',
    '"quote \\" inside" NOT (a:b OR NOT c:*d*)',
    'event.category:authentication event.action:logon* user.name:*adm* 1e3',
]):
    put("event_query", f"query-{n}.txt", q)


# --- spool_segment: flags, base id, acked id, then a segment of records ------------------------
def record(record_id, payload, good=True):
    crc = zlib.crc32(struct.pack("<IQ", len(payload), record_id) + payload)
    if not good:
        crc ^= 1
    return b"DZSP" + struct.pack("<IQI", len(payload), record_id, crc) + payload


def spool(flags, base, acked, segment):
    return bytes([flags]) + struct.pack("<QQ", base, acked) + segment


put("spool_segment", "records.bin", spool(0, 1, 0, record(1, b'{"batch":1}') + record(2, b"") + record(3, b"x" * 40)))
put("spool_segment", "acked.bin", spool(2, 5, 6, record(5, b"five") + record(6, b"six") + record(7, b"seven")))
put("spool_segment", "corrupt-middle.bin", spool(0, 1, 0, record(1, b"one") + record(2, b"two", good=False) + b"junk" + record(3, b"three")))
put("spool_segment", "torn-tail.bin", spool(0, 1, 0, record(1, b"one") + record(2, b"two")[:-1]))
put("spool_segment", "fix-checksums.bin", spool(3, 10, 9, b"DZSP" + struct.pack("<IQI", 3, 10, 0) + b"abc" + b"DZSP" + struct.pack("<IQI", 0, 11, 0)))
