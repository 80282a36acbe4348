"""What every page shares: words in two languages, static files, the start page.

Vietnamese is the source language: templates and `lazy_gettext` calls are written in
Vietnamese, and `translations/en.po` gives the English. A string the English catalog
lacks therefore shows in Vietnamese, the language every centre's users read. Catalogs
are compiled into the instance folder when the app starts (no build step, and the
installed package may be read-only).

Pages get their JavaScript strings rendered into the page as JSON for both languages
(`page_strings`), so a kiosk can switch language on a tap without a reload, and CSP
still allows no inline script.
"""

from __future__ import annotations

import json
from pathlib import Path

from flask import Blueprint, Flask, current_app, render_template, request, send_from_directory
from flask_babel import Babel, force_locale, gettext
from markupsafe import Markup

from core import views

from .api import access

LANGUAGES = ("vi", "en")
CATALOGS = Path(__file__).resolve().parent.parent / "translations"

bp = Blueprint(
    "web",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)


def compile_catalogs(target: Path) -> Path:
    """Compile translations/<lang>.po into target/<lang>/LC_MESSAGES/messages.mo when stale."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    for po in sorted(CATALOGS.glob("*.po")):
        mo = target / po.stem / "LC_MESSAGES" / "messages.mo"
        if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        mo.parent.mkdir(parents=True, exist_ok=True)
        with po.open("rb") as f:
            catalog = read_po(f, locale=po.stem)
        tmp = mo.with_suffix(".tmp")
        with tmp.open("wb") as f:
            write_mo(f, catalog)
        tmp.replace(mo)
    return target


def page_lang() -> str:
    """A page's language: `?lang=en` asks for English; Vietnamese otherwise."""
    lang = request.args.get("lang") if request else None
    return lang if lang in LANGUAGES else "vi"


def N_(msgid: str) -> str:  # noqa: N802 - the gettext convention for "mark, translate later"
    return msgid


# Words every page's script uses.
COMMON_STRINGS = {
    "reconnecting": N_("Đang kết nối lại…"),
    "server_trouble": N_("Máy chủ đang gặp sự cố. Hãy thử lại sau giây lát."),
}
# The staff login form's words (gateway/static/motcua.js staffLogin) and the logout, which
# each staff page (clerk, monitor, reports, admin) adds to its words.
STAFF_LOGIN_STRINGS = {
    "username": N_("Tên đăng nhập"),
    "password": N_("Mật khẩu"),
    "login": N_("Đăng nhập"),
    "logout": N_("Đăng xuất"),
    "server_unreachable": N_("Không kết nối được máy chủ. Hãy kiểm tra mạng rồi thử lại."),
}
# What a device page (kiosk, board, tablet) says when the server refused its token
# (gateway/static/motcua.js tokenRefusal); each of those pages adds them to its words.
DEVICE_PAGE_STRINGS = {
    "token_wrong": N_("Mã thiết bị không đúng. Vui lòng báo cán bộ kỹ thuật."),
    "token_wrong_hint": N_(
        "Cán bộ kỹ thuật: kiểm tra lại mã trong địa chỉ …/?token=…, hoặc mã đã bị thu hồi."
    ),
    "token_revoked": N_("Thiết bị này đã bị thu hồi. Vui lòng báo quản trị viên của trung tâm."),
    "token_revoked_hint": N_(
        "Quản trị viên: cấp mã mới cho thiết bị trên trang quản trị, rồi mở trang này với "
        "mã mới …/?token=…"
    ),
    "token_kept": N_(
        "Cán bộ kỹ thuật: mã trong địa chỉ không đúng; mã đã lưu trước đó vẫn được giữ. "
        "Mở lại trang không kèm mã để dùng mã đã lưu."
    ),
}


def page_strings(strings: dict) -> Markup:
    """`{"vi": {key: text}, "en": {...}}` as JSON for a `<script type="application/json">`.

    ``strings`` maps keys to Vietnamese msgids (plain strings marked with `N_`)."""
    out = {}
    for lang in LANGUAGES:
        with force_locale(lang):
            out[lang] = {k: gettext(v) for k, v in {**COMMON_STRINGS, **strings}.items()}
    # "</" must not end the script element early; JSON allows the escaped form.
    return Markup(json.dumps(out, ensure_ascii=False).replace("</", "<\\/"))


def init_app(app: Flask) -> None:
    directory = compile_catalogs(Path(app.instance_path) / "translations")
    Babel(
        app,
        default_locale="vi",
        default_translation_directories=str(directory),
        locale_selector=page_lang,
    )
    app.jinja_env.globals["page_strings"] = page_strings
    app.context_processor(lambda: {"lang": page_lang()})
    app.register_blueprint(bp)


def _font_dir() -> Path:
    import fontpkg_be_vietnam_pro

    return fontpkg_be_vietnam_pro.ROOT


@bp.get("/static/fonts/<name>")
@access("public")
def font(name: str):
    """Be Vietnam Pro (OFL), served from its PyPI package: no CDN on a closed LAN."""
    if name == "LICENSE.txt":
        return send_from_directory(_font_dir(), "LICENSE", mimetype="text/plain")
    return send_from_directory(_font_dir() / "files", name, max_age=86400)


def demo_devices(demo_file: Path, pages: dict[str, tuple[str, str]]) -> dict:
    """The demo's device pages (``pages``: the role bundles' ``kind -> (path, label)``),
    each opened with its (public) demo token, and its (public) staff logins."""
    import tomllib

    data = tomllib.loads(demo_file.read_text(encoding="utf-8"))
    devices = []
    for d in data.get("devices", []):
        if d["kind"] in pages:
            path, label = pages[d["kind"]]
            devices.append({"label": label, "name": d["name"], "url": f"{path}?token={d['token']}"})
    staff = [
        {
            "username": st["username"],
            "password": st["password"],
            "name": st["full_name"],
            "role": st["role"],
        }
        for st in data.get("staff", [])
        if st["role"] in ("clerk", "manager", "admin")
    ]
    return {"devices": devices, "staff": staff}


@bp.get("/")
@access("public")
def start():
    """The start page: centres, the staff login, and in the demo the device pages."""
    ctx = current_app.extensions["motcua"]
    demo = current_app.config.get("DEMO_DEVICES")
    return render_template("web/start.html", centres=ctx.read(views.centres), demo=demo)
