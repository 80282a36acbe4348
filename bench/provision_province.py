"""How long `server.py provision` takes for a whole province (issue 22).

Generates a province of N centres into a temporary folder (default 200: a provincial
centre with 20 counters, then commune offices with 3-5 counters each, 5 clerks and a
manager, a kiosk, a display board, a rating tablet per counter and a hardware agent),
then times `server.py provision province.toml` as a province's IT staff run it, on a
fresh SQLite file and on a fresh PostgreSQL database: applied once (everything created),
again unchanged (nothing to do), and with one centre's file changed.

    .venv/bin/python bench/provision_province.py                 # 200 centres, both stores
    .venv/bin/python bench/provision_province.py --centres 10 --store sqlite

Passwords (``--passwords``): ``managers`` (default) gives each centre's manager and the
province admin a password in the file and leaves the clerks without one (their centre's
admin sets them on /admin/, docs/admin.md "A province"); ``all`` gives every account one
(each costs one scrypt hash, ~0.16 s of a core: 1,200 accounts are ~100 s of scrypt on
two cores whatever else is done). The figures are printed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.process import ROOT  # noqa: E402
from harness.services import DEFAULT_POSTGRES_URL, scratch_database  # noqa: E402

AGENCIES_PROVINCE = [
    ("STP", "Sở Tư pháp"),
    ("SNNVMT", "Sở Nông nghiệp và Môi trường"),
    ("STC", "Sở Tài chính"),
    ("SXD", "Sở Xây dựng"),
    ("SCT", "Sở Công Thương"),
    ("SYT", "Sở Y tế"),
    ("SGDDT", "Sở Giáo dục và Đào tạo"),
    ("SNV", "Sở Nội vụ"),
]
SERVICES_COMMUNE = [
    ("HT", "Hộ tịch", "VP"),
    ("CT", "Chứng thực", "VP"),
    ("DD", "Đất đai", "KT"),
    ("BTXH", "Bảo trợ xã hội", "VHXH"),
    ("HKD", "Đăng ký hộ kinh doanh", "KT"),
]


def q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def centre_file(i: int, all_passwords: bool) -> str:
    """Centre ``i`` (0: the provincial centre) as a provisioning file."""
    province = i == 0
    code = "TINH" if province else f"X{i:03d}"
    u = code.lower()
    lines = ["[centre]", f"code = {q(code)}"]
    if province:
        lines.append(f"name = {q('Trung tâm Phục vụ hành chính công tỉnh Thử Nghiệm')}")
        agencies = AGENCIES_PROVINCE
        services = [
            (f"{a}{k}", f"Thủ tục {k} của {name}", a) for a, name in agencies for k in (1, 2)
        ]
        counters = 20
        clerks = 20
    else:
        lines.append(f"name = {q(f'Bộ phận Một cửa xã Thử Nghiệm {i}')}")
        agencies = [
            ("VP", "Văn phòng HĐND và UBND"),
            ("KT", "Phòng Kinh tế"),
            ("VHXH", "Phòng Văn hóa - Xã hội"),
        ]
        services = SERVICES_COMMUNE
        counters = 3 + i % 3
        clerks = 5
    for a, name in agencies:
        lines += ["", "[[agencies]]", f"code = {q(a)}", f"name = {q(name)}"]
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    for n, (s, name, a) in enumerate(services):
        prefix = letters[n % 26] + (letters[n // 26 - 1] if n >= 26 else "")
        lines += ["", "[[services]]", f"code = {q(s)}", f"name = {q(name)}", f"agency = {q(a)}"]
        lines.append(f"prefix = {q(prefix)}")
    codes = [s for s, _, _ in services]
    for n in range(1, counters + 1):
        mine = [codes[(n - 1) % len(codes)], codes[n % len(codes)]]
        lines += [
            "",
            "[[counters]]",
            f"number = {n}",
            "services = [" + ", ".join(map(q, mine)) + "]",
        ]
    for k in range(1, clerks + 1):
        lines += ["", "[[staff]]", f"username = {q(f'{u}.canbo{k}')}"]
        lines += [f"full_name = {q(f'Cán bộ {k} {code}')}", 'role = "clerk"']
        lines.append(f"counters = [{(k - 1) % counters + 1}]")
        if all_passwords:
            lines.append(f"password = {q(f'{u}-canbo-{k}-secret')}")
    lines += [
        "",
        "[[staff]]",
        f"username = {q(f'{u}.quanly')}",
        f"password = {q(f'{u}-quanly-secret')}",
    ]
    lines += [f"full_name = {q(f'Lãnh đạo {code}')}", 'role = "manager"']
    if province:
        lines += ["", "[[staff]]", 'username = "tinh.quantri"', 'password = "tinh-quantri-secret"']
        lines += ['full_name = "Quản trị tỉnh"', 'role = "installation_admin"']
    devices = [("Kiosk", "kiosk", None), ("Bảng", "display", None)]
    devices += [(f"Đánh giá quầy {n}", "rating", n) for n in range(1, counters + 1)]
    for name, kind, counter in devices:
        lines += ["", "[[devices]]", f"name = {q(name)}", f"kind = {q(kind)}"]
        lines.append(f"token = {q(f'{u}-{kind}-{counter or 0}-bench-token')}")
        if counter:
            lines.append(f"counter = {counter}")
    lines += ["", "[[devices]]", 'name = "Máy trạm"', 'kind = "agent"']
    lines += [f"token = {q(f'{u}-agent-bench-token')}", 'kiosks = ["Kiosk"]']
    return "\n".join(lines) + "\n"


def generate(folder: Path, n: int, all_passwords: bool) -> Path:
    (folder / "xa").mkdir(parents=True, exist_ok=True)
    (folder / "tinh.toml").write_text(centre_file(0, all_passwords), encoding="utf-8")
    for i in range(1, n):
        (folder / "xa" / f"x{i:03d}.toml").write_text(
            centre_file(i, all_passwords), encoding="utf-8"
        )
    province = folder / "province.toml"
    province.write_text(
        '[province]\ncode = "TN"\nname = "Tỉnh Thử Nghiệm"\ncentres = ["tinh.toml", "xa/*.toml"]\n',
        encoding="utf-8",
    )
    return province


def provision(province: Path, url: str, instance: Path) -> tuple[float, str]:
    env = {
        **os.environ,
        "MOTCUA_INSTANCE_PATH": str(instance),
        "MOTCUA_SECRET_KEY": "bench-provision-province",
        "MOTCUA_LOG_LEVEL": "WARNING",
    }
    start = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "server.py"),
            "provision",
            str(province),
            "--database-url",
            url,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    took = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"provision failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return took, done.stdout.strip().splitlines()[-1]


def run(label: str, url: str, province: Path, folder: Path) -> None:
    instance = folder / f"instance-{label}"
    first, said = provision(province, url, instance)
    print(f"{label:<10} first apply      {first:7.1f} s   {said}")
    again, said = provision(province, url, instance)
    print(f"{label:<10} again, unchanged {again:7.1f} s   {said}")
    one = folder / "xa" / "x001.toml"
    if one.exists():
        text = one.read_text(encoding="utf-8")
        one.write_text(
            text.replace('password = "x001-quanly-secret"', 'password = "x001-quanly-new"'),
            encoding="utf-8",
        )
        changed, said = provision(province, url, instance)
        one.write_text(text, encoding="utf-8")
        print(f"{label:<10} one file changed {changed:7.1f} s   {said}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--centres", type=int, default=200, help="centres in the province (200)")
    p.add_argument("--passwords", choices=("managers", "all"), default="managers")
    p.add_argument("--store", choices=("both", "sqlite", "postgresql"), default="both")
    p.add_argument(
        "--postgres",
        default=DEFAULT_POSTGRES_URL,
        metavar="ADMIN_URL",
        help=f"where to create the fresh database ({DEFAULT_POSTGRES_URL})",
    )
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="motcua-province-") as tmp:
        folder = Path(tmp)
        province = generate(folder, args.centres, args.passwords == "all")
        accounts = sum(
            f.read_text(encoding="utf-8").count("[[staff]]") for f in folder.rglob("*.toml")
        )
        passwords = sum(
            f.read_text(encoding="utf-8").count("password =") for f in folder.rglob("*.toml")
        )
        print(
            f"province of {args.centres} centres: {accounts} accounts, {passwords} passwords "
            f"in the files; {os.cpu_count()} cores"
        )
        if args.store in ("both", "sqlite"):
            run("sqlite", f"sqlite:///{folder / 'province.sqlite3'}", province, folder)
        if args.store in ("both", "postgresql"):
            with scratch_database(args.postgres, "motcua_bench_province") as url:
                run("postgresql", url, province, folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
