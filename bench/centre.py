"""The centre a benchmark runs on, generated to size: services, counters with one clerk
each, kiosks, displays and rating tablets, as a provisioning file and its credentials."""

from __future__ import annotations

from dataclasses import dataclass

SERVICES = [
    ("TP", "Lý lịch tư pháp", "Sở Tư pháp", "A"),
    ("HT", "Hộ tịch", "Sở Tư pháp", "B"),
    ("DD", "Đất đai", "Sở Nông nghiệp và Môi trường", "C"),
    ("DN", "Đăng ký doanh nghiệp", "Sở Tài chính", "D"),
    ("XD", "Cấp phép xây dựng", "Sở Xây dựng", "E"),
    ("LD", "Lao động, việc làm", "Sở Nội vụ", "G"),
]


@dataclass
class Centre:
    toml: str
    services: list[str]
    clerks: list[tuple[str, str, int]]  # username, password, counter number
    kiosks: list[str]
    displays: list[str]
    ratings: list[str]
    managers: list[tuple[str, str]] = ()  # username, password: the monitor's watchers
    code: str = "BENCH"


def make_centre(
    *,
    counters: int,
    kiosks: int,
    displays: int,
    ratings: int,
    services: int = 4,
    managers=0,
    code: str = "BENCH",
    name: str = "Trung tâm thử tải",
) -> Centre:
    """A centre where every counter serves every service, one clerk per counter.

    Usernames and device tokens are unique to the centre's ``code`` (several centres on
    one installation, bench/province.py); the default centre keeps its historic ones."""
    own = "" if code == "BENCH" else f"{code.lower()}-"
    services = max(1, min(services, len(SERVICES)))
    n_counters = max(1, counters)
    svc = SERVICES[:services]
    codes = [s[0] for s in svc]
    out = [
        "[centre]",
        f'code = "{code}"',
        f'name = "{name}"',
        'timezone = "Asia/Ho_Chi_Minh"',
        "",
    ]
    for s_code, s_name, agency, prefix in svc:
        out += [
            "[[services]]",
            f'code = "{s_code}"',
            f'name = "{s_name}"',
            f'agency = "{agency}"',
            f'prefix = "{prefix}"',
            "",
        ]
    for n in range(1, n_counters + 1):
        out += [
            "[[counters]]",
            f"number = {n}",
            f'name = "Quầy {n}"',
            "services = [" + ", ".join(f'"{c}"' for c in codes) + "]",
            "",
        ]
    clerks = []
    for n in range(1, counters + 1):
        user, pw = f"{own}clerk{n:03d}", f"bench-secret-{n:03d}"
        clerks.append((user, pw, n))
        out += [
            "[[staff]]",
            f'username = "{user}"',
            f'password = "{pw}"',
            f'full_name = "Cán bộ {n}"',
            'role = "clerk"',
            f"counters = [{n}]",
            "",
        ]

    managers_ = []
    for i in range(1, managers + 1):
        user, pw = f"{own}manager{i:03d}", f"bench-manager-{i:03d}"
        managers_.append((user, pw))
        out += [
            "[[staff]]",
            f'username = "{user}"',
            f'password = "{pw}"',
            f'full_name = "Lãnh đạo {i}"',
            'role = "manager"',
            "",
        ]

    def devices(kind, count, extra=lambda i: []):
        tokens = []
        for i in range(1, count + 1):
            token = f"bench-{own}{kind}-token-{i:04d}"
            tokens.append(token)
            out.extend(
                [
                    "[[devices]]",
                    f'name = "{kind} {i}"',
                    f'kind = "{kind}"',
                    f'token = "{token}"',
                    *extra(i),
                    "",
                ]
            )
        return tokens

    k = devices("kiosk", kiosks)
    d = devices("display", displays)
    r = devices("rating", ratings, lambda i: [f"counter = {(i - 1) % n_counters + 1}"])
    return Centre("\n".join(out), codes, clerks, k, d, r, managers_, code)


def centre_from_args(args) -> Centre:
    """The centre of a benchmark's --counters, --kiosks, --displays, --ratings, --services."""
    return make_centre(
        counters=max(1, args.counters),
        kiosks=args.kiosks,
        displays=args.displays,
        ratings=args.ratings,
        services=args.services,
        managers=getattr(args, "managers", 0),
    )
