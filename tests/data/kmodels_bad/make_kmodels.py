"""Regenerate the hand-made malformed kmodels of this corpus (besides hil.kmodel.build.broken).

    python tests/data/kmodels_bad/make_kmodels.py

EXPECTED.json maps each file to a substring of its one-line KModelFormatError, or to "parses"
for a file whose header is well formed (MaixPy refuses it for another reason). Each is small.
Run by tests/test_corpus_inputs.py (API and `hil models info`).
"""
from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

HERE = Path(__file__).resolve().parent


def v3_header(version=3, flags=0, arch=0, layers=1, start=0, main_mem=65536, outputs=1) -> bytes:
    return struct.pack("<7I", version, flags, arch, layers, start, main_mem, outputs)


def v4_header(target=1, constants=0, main_mem=65536, nodes=1, inputs=1, outputs=1) -> bytes:
    return b"LDMK" + struct.pack("<9I", 4, 0, target, constants, main_mem, nodes, inputs, outputs, 0)


CASES: dict[str, tuple[bytes, str]] = {
    "text.kmodel": (b"this is not a model, it is a text file\n", "version"),
    "onnx_renamed.kmodel": (b"\x08\x07\x12\x07pytorch\x1a\x051.9.0" + bytes(64), "version"),
    "gzipped_v3.kmodel": (gzip.compress(v3_header() + bytes(200), mtime=0), "version"),
    "zeros.kmodel": (bytes(4096), "version"),
    "one_byte.kmodel": (b"\x03", "offset 0x0"),
    "v3_header_only.kmodel": (v3_header(), "offset 0x1c"),
    "v3_outputs_huge.kmodel": (v3_header(outputs=0x7FFFFFFF) + bytes(64), "output"),
    "v3_layers_huge.kmodel": (v3_header(layers=0x10000000) + bytes(64), "layer"),
    "v4_header_only.kmodel": (v4_header(), "offset 0x28"),
    "v4_inputs_huge.kmodel": (v4_header(inputs=0x40000000) + bytes(128), "input"),
    "v4_constants_past_end.kmodel": (v4_header(constants=1 << 30) + bytes(128), "constant"),
    "kmdl_version_9.kmodel": (b"LDMK" + struct.pack("<9I", 9, 0, 1, 0, 0, 0, 0, 0, 0), "version"),
    "v5_header_only.kmodel": (b"LDMK" + struct.pack("<7I", 5, 32, 0, 8, 1, 0, 0), "offset"),
}


def main() -> None:
    expected = {}
    for name, (data, want) in CASES.items():
        (HERE / name).write_bytes(data)
        expected[name] = want
    (HERE / "EXPECTED.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
