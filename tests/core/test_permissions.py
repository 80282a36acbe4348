"""Who may do what: the permission table, staff across centres, and every HTTP endpoint
asked with every role and with none (the app built by create_app, in-process)."""

from __future__ import annotations

import itertools
import secrets
import shutil
from datetime import timedelta

import pytest
import sqlalchemy as sa

from core import auth
from core import models as m
from core.errors import QueueError
from core.permissions import PERMISSIONS, STAFF_ROLES
from core.provisioning import ProvisioningError, provision
from core.store import Store
from harness.centre import (
    AGENT,
    CENTRE,
    COMMUNE,
    COMMUNE_PASSWORDS,
    DISPLAY,
    INTEGRATION,
    KIOSK,
    PASSWORDS,
    RATING_1,
)

T2 = COMMUNE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def two_centres(tmp_path_factory, centre_file):
    """The test centre's store with T2 provisioned beside it (a template to copy)."""
    folder = tmp_path_factory.mktemp("province")
    path = folder / "province.sqlite3"
    shutil.copyfile(centre_file, path)
    (folder / "t2.toml").write_text(T2, encoding="utf-8")
    store = Store(f"sqlite:///{path}")
    provision(store, folder / "t2.toml")
    store.dispose()
    return path


@pytest.fixture
def store(two_centres, tmp_path):
    path = tmp_path / "motcua.sqlite3"
    shutil.copyfile(two_centres, path)
    s = Store(f"sqlite:///{path}")
    yield s
    s.dispose()


def test_the_table_grants_more_up_the_ladder_and_knows_every_permission():
    clerk, manager, admin = (STAFF_ROLES[r].grants for r in ("clerk", "manager", "admin"))
    assert clerk < manager < admin
    assert STAFF_ROLES["installation_admin"].grants == frozenset(PERMISSIONS)
    assert [r.name for r in STAFF_ROLES.values() if r.everywhere] == ["installation_admin"]


def _principal(store, username):
    return store.read(lambda conn: auth.principal_for_username(conn, username))


def _centre_id(store, code):
    return (
        store.read(
            lambda conn: conn.execute(sa.select(m.centres.c.id).where(m.centres.c.code == code))
        ).scalar()
        if False
        else store.read(
            lambda conn: conn.execute(
                sa.select(m.centres.c.id).where(m.centres.c.code == code)
            ).scalar_one()
        )
    )


def test_roles_are_held_per_centre(store):
    t1, t2 = _centre_id(store, "T1"), _centre_id(store, "T2")
    clerk1 = _principal(store, "clerk1")
    assert (clerk1.home_centre_id, clerk1.role_in(t1), clerk1.role_in(t2)) == (t1, "clerk", "clerk")
    manager = _principal(store, "quanly2")
    assert manager.may("reports.view", t2) and not manager.may("reports.view", t1)
    assert not manager.may("config.manage", t2)
    province = _principal(store, "tinh")
    assert all(province.may(p, c) for p in PERMISSIONS for c in (t1, t2))
    with pytest.raises(QueueError) as refused:
        auth.require(manager, "centre.read", t1)
    assert refused.value.code == "forbidden"
    assert refused.value.as_dict()["message"] == (
        "Tài khoản này không có quyền xem lĩnh vực và quầy của trung tâm."
    )
    assert "may not read the centre" in refused.value.as_dict("en")["message"]


def test_a_lent_clerk_takes_counters_where_each_centre_says(store):
    clerk1 = _principal(store, "clerk1")

    def take(number, centre=None):
        return store.read(lambda conn: auth.take_counter(conn, clerk1, number, centre))

    role, counter = take(1)  # T1's counter 1, as tests/centre.toml allows
    assert (role, counter.centre_id) == ("clerk", clerk1.home_centre_id)
    role, counter = take(2, "T2")
    assert counter.centre_id == _centre_id(store, "T2")
    for number, centre, code in ((1, "T2", "forbidden"), (2, "T9", "not_found")):
        with pytest.raises(QueueError) as refused:
            take(number, centre)
        assert refused.value.code == code
    # The manager of T2 holds no role in T1: no counter there.
    manager = _principal(store, "quanly2")
    with pytest.raises(QueueError) as refused:
        store.read(lambda conn: auth.take_counter(conn, manager, 1, "T1"))
    assert refused.value.code == "forbidden"


def _session(store, username: str, hours: float = 8) -> str:
    """A session token for ``username`` (as a login opens one, without the password's
    hash: ``hours`` to live, negative for one expired)."""
    token = secrets.token_urlsafe(16)

    def op(tx):
        st = m.staff
        staff_id = tx.conn.execute(sa.select(st.c.id).where(st.c.username == username)).scalar()
        tx.conn.execute(
            m.staff_sessions.insert().values(
                staff_id=staff_id,
                token_hash=auth.token_hash(token),
                created_at=tx.now,
                expires_at=tx.now + timedelta(hours=hours),
                address="test",
                seen_at=tx.now,
            )
        )
        return {}

    store.write(op, centre_id=0, actor="test")
    return token


def test_clerks_reconnecting_together_are_each_as_one_alone(store):
    """A hall of clerks reconnecting at once is looked up in one read (the counter door
    gathers them): each gets what it would alone, refusals included."""
    clerk1, clerk2, clerk3, quanly2 = (
        _session(store, u) for u in ("clerk1", "clerk2", "clerk3", "quanly2")
    )
    expired = _session(store, "clerk2", hours=-1)
    expected = {
        (clerk1, 1, None): "T1",
        (clerk1, 2, "T2"): "T2",  # lent to T2
        (clerk1, 1, "T2"): "forbidden",  # not T2's counter 1
        (clerk1, 3, None): "forbidden",  # assigned counter 1 only
        (clerk2, 2, None): "T1",  # assigned none: any
        (clerk2, 9, None): "not_found",
        (clerk3, 1, "T9"): "not_found",
        (quanly2, 1, "T1"): "forbidden",  # no role in T1
        (expired, 2, None): "unauthorized",
        ("made-up", 1, None): "unauthorized",
        (KIOSK, 1, None): "unauthorized",  # a device's token opens no counter
    }
    together = store.read(lambda conn: auth.staff_at_counters(conn, list(expected)))

    def alone(key):
        try:
            return store.read(lambda conn: auth.staff_at_counter(conn, *key))
        except QueueError as e:
            return e

    codes = {_centre_id(store, "T1"): "T1", _centre_id(store, "T2"): "T2"}
    for key, want in expected.items():
        got, one = together[key], alone(key)
        if isinstance(got, QueueError):
            assert (got.code, got.as_dict()) == (one.code, one.as_dict()) and got.code == want
        else:
            principal, role, counter = got
            assert (principal, role, counter) == one, key
            assert (codes[counter.centre_id], counter.number) == (want, key[1])
    assert together[(expired, 2, None)].key == "auth_expired"
    assert together[("made-up", 1, None)].key == together[(KIOSK, 1, None)].key == "auth_invalid"


def test_reapplying_the_home_file_keeps_the_lent_counters(store, tmp_path):
    changed = CENTRE.read_text(encoding="utf-8").replace(
        'full_name = "Nguyễn Văn A"', 'full_name = "Nguyễn Văn An"'
    )
    (tmp_path / "t1.toml").write_text(changed, encoding="utf-8")
    provision(store, tmp_path / "t1.toml")
    clerk1 = _principal(store, "clerk1")
    assert clerk1.full_name == "Nguyễn Văn An"
    _role, counter = store.read(lambda conn: auth.take_counter(conn, clerk1, 2, "T2"))
    assert counter.number == 2  # still assigned there: T1's file manages T1's counters only


def _snapshot(store):
    def read(conn):
        return {
            t.name: sorted(tuple(r) for r in conn.execute(sa.select(t)))
            for t in (m.staff, m.staff_roles, m.staff_counters)
        }

    return store.read(read)


def test_two_centres_naming_one_username_is_refused_and_nothing_moves(store, tmp_path):
    before = _snapshot(store)
    stolen = (
        '[centre]\ncode = "T3"\nname = "Xã khác"\n\n'
        '[[staff]]\nusername = "clerk1"\npassword = "another-secret"\n'
        'full_name = "Người khác"\nrole = "admin"\n'
    )
    (tmp_path / "t3.toml").write_text(stolen, encoding="utf-8")
    with pytest.raises(ProvisioningError) as refused:
        provision(store, tmp_path / "t3.toml")
    line = stolen.splitlines().index('username = "clerk1"') + 1
    assert (refused.value.path, refused.value.line) == (str(tmp_path / "t3.toml"), line)
    assert "“clerk1” đã thuộc trung tâm “T1”" in refused.value.what
    assert 'home = "T1"' in refused.value.what
    assert _snapshot(store) == before
    assert (
        store.read(
            lambda conn: conn.execute(sa.select(m.centres).where(m.centres.c.code == "T3")).first()
        )
        is None
    )
    # Lending an account its claimed home does not own is refused as well.
    wrong_home = (
        '[centre]\ncode = "T4"\nname = "Xã khác"\n\n'
        '[[staff]]\nusername = "clerk1"\nhome = "T2"\nrole = "clerk"\n'
    )
    (tmp_path / "t4.toml").write_text(wrong_home, encoding="utf-8")
    with pytest.raises(ProvisioningError) as refused:
        provision(store, tmp_path / "t4.toml")
    assert "không có cán bộ “clerk1” để cho mượn" in refused.value.what
    assert _snapshot(store) == before


def test_a_lent_entry_may_not_set_what_its_home_centre_owns(tmp_path):
    from core.provisioning import load

    text = T2.replace('home = "T1"\n', 'home = "T1"\npassword = "changed-it-here"\n')
    (tmp_path / "t2.toml").write_text(text, encoding="utf-8")
    with pytest.raises(ProvisioningError) as refused:
        load(tmp_path / "t2.toml")
    assert "“password” do trung tâm đó quản lý" in refused.value.what


def test_an_entry_without_a_password_keeps_the_accounts_or_waits_for_one(store, tmp_path):
    """As the admin API's export writes them (issue 18): an account keeps its password;
    a new one has none that works until an admin sets one."""
    from core.provisioning import LOCKED

    text = T2.replace('password = "quanly2-secret"\n', "")
    text += '\n[[staff]]\nusername = "moi"\nfull_name = "Người mới"\nrole = "clerk"\n'
    (tmp_path / "t2.toml").write_text(text, encoding="utf-8")
    provision(store, tmp_path / "t2.toml")
    st = m.staff
    hashes = dict(
        store.read(
            lambda conn: conn.execute(
                sa.select(st.c.username, st.c.password_hash).where(
                    st.c.username.in_(["quanly2", "moi"])
                )
            ).all()
        )
    )
    assert auth.password_matches(hashes["quanly2"], "quanly2-secret")
    assert hashes["moi"] == LOCKED and not auth.password_matches(LOCKED, "")


# -- every HTTP endpoint, with every role and with none ---------------------------------
@pytest.fixture
def client(two_centres, tmp_path):
    import server

    path = tmp_path / "app.sqlite3"
    shutil.copyfile(two_centres, path)
    app, _sio, ctx = server.create_app(
        {"DATABASE_URL": f"sqlite:///{path}", "SECRET_KEY": "test", "ASYNC_MODE": "threading"}
    )
    app.config["TESTING"] = True
    yield app
    ctx.store.dispose()


STAFF = {**PASSWORDS, **COMMUNE_PASSWORDS}
DEVICES = {
    "kiosk": KIOSK,
    "display": DISPLAY,
    "rating": RATING_1,
    "agent": AGENT,
    "integration": INTEGRATION,
}


def _filled(rule) -> str:
    url = rule.rule
    for arg in rule.arguments:
        url = url.replace(f"<path:{arg}>", "x").replace(f"<{arg}>", "x")
    return url


def test_every_endpoint_says_who_may_call_it_and_is_held_to_it(client):
    http = client.test_client()
    tokens = {}
    for username in ("clerk1", "quanly2", "quantri2", "tinh"):
        answer = http.post(
            "/api/v1/auth/login", json={"username": username, "password": STAFF[username]}
        )
        assert answer.status_code == 200, answer.json
        tokens[username] = answer.json["token"]
    with client.app_context():
        store = client.extensions["motcua"].store
        principals = {u: _principal(store, u) for u in tokens}
        centres = {code: _centre_id(store, code) for code in ("T1", "T2")}

    checked = 0
    for rule in client.url_map.iter_rules():
        view = client.view_functions[rule.endpoint]
        access = "public" if rule.endpoint.endswith("static") else getattr(view, "access", None)
        assert access is not None, f"{rule.rule} does not say who may call it"
        method = sorted(rule.methods - {"HEAD", "OPTIONS"})[0]
        url = _filled(rule)

        def call(token=None, query="", url=url, method=method, address="127.0.0.1"):
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            return http.open(
                url + query, method=method, headers=headers, environ_base={"REMOTE_ADDR": address}
            ).status_code

        if access in ("public", "session") or access[0] == "key":
            assert call() not in (401, 403), rule.rule
            continue
        if access[0] == "address":  # by the caller's address only (the setting ``what``)
            assert call() == 200, rule.rule  # loopback
            assert call(address="192.0.2.1") == 403, rule.rule
            for token in [*tokens.values(), *DEVICES.values()]:
                assert call(token, address="192.0.2.1") == 403, (rule.rule, "a token")
            checked += 1
            continue
        kind, what = access
        assert call() == 401, rule.rule
        if kind == "staff":
            for username, code in itertools.product(tokens, centres):
                allowed = principals[username].may(what, centres[code])
                status = call(tokens[username], f"?centre={code}")
                assert (status == 403) != allowed, (rule.rule, username, code, status)
                assert status != 401
            for token in DEVICES.values():
                assert call(token) == 401, (rule.rule, "device token")
        else:
            for device_kind, token in DEVICES.items():
                status = call(token)
                assert (status == 401) == (device_kind != what), (rule.rule, device_kind, status)
            for token in tokens.values():
                assert call(token) == 401, (rule.rule, "staff token")
        checked += 1
    assert checked >= 5  # the centre, the dossier API twice, the tablet's photo, /metrics
