"""The ctypes mirrors of the C structs match the headers: a C program
compiled against include/attnflow prints every field offset and struct size."""
import os
import subprocess

from attnflow import _structs as S
from conftest import ROOT


def test_every_field_offset_and_struct_size_matches_the_headers(tmp_path):
    inc = os.environ.get("ATTNFLOW_INCLUDE", os.path.join(ROOT, "include"))
    lines = [f'#include "attnflow/{h}"' for h in S.HEADERS]
    lines += ["#include <stdio.h>", "#include <stddef.h>", "int main(void) {"]
    expected = []
    for cls in S.ALL:
        t = cls._c_name_
        lines.append(f'printf("{t} %zu\\n", sizeof({t}));')
        expected.append(f"{t} {S.ctypes.sizeof(cls)}")
        for name, _ in cls._fields_:
            lines.append(f'printf("{t}.{name} %zu\\n", offsetof({t}, {name}));')
            expected.append(f"{t}.{name} {getattr(cls, name).offset}")
    lines.append("return 0; }")
    src = tmp_path / "layout.c"
    src.write_text("\n".join(lines) + "\n")
    gsl = subprocess.run(["pkg-config", "--cflags", "gsl"], capture_output=True, text=True).stdout.split()
    subprocess.run(["cc", "-std=c11", f"-I{inc}", *gsl, str(src), "-o", str(tmp_path / "layout")],
                   check=True)
    got = subprocess.run([str(tmp_path / "layout")], capture_output=True, text=True,
                         check=True).stdout.split("\n")
    assert [g for g in got if g] == expected
