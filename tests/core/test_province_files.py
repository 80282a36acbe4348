"""core/province.py without a server: passwords hashed on several threads before the
transaction, each one right; an unchanged centre's passwords never checked again."""

from __future__ import annotations

import threading

from core import province
from core.auth import password_matches
from core.store import Store


def centre_file(tmp_path, passwords: dict[str, str]) -> str:
    lines = ['[centre]\ncode = "P1"\nname = "Bộ phận Một cửa xã Một"\n']
    for username, password in passwords.items():
        lines.append(
            f'[[staff]]\nusername = "{username}"\npassword = "{password}"\n'
            f'full_name = "Cán bộ {username}"\nrole = "clerk"\n'
        )
    path = tmp_path / "p1.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return str(path)


def test_passwords_are_hashed_on_several_threads_and_each_one_is_right(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    store.migrate()
    key = b"k" * 32
    passwords = {f"canbo{i}": f"mat-khau-so-{i}" for i in range(6)}
    batch = province.load(centre_file(tmp_path, passwords))
    threads = set()

    def hashing_map(fn, items):
        def each(item):
            threads.add(threading.get_ident())
            return fn(item)

        return province.thread_map(each, items, workers=3)

    done = province.prepare_passwords(store, batch, key, hashing_map)
    assert (done.hashed, done.checked) == (6, 0)
    assert len(threads) > 1  # scrypt releases the GIL: the threads run at once
    assert province.apply(store, batch, key).written

    stored = store.read(
        lambda conn: dict(conn.exec_driver_sql("SELECT username, password_hash FROM staff").all())
    )
    for username, password in passwords.items():
        assert password_matches(stored[username], password)
    assert len(set(stored.values())) == 6  # each its own salt

    # The same file again: its digest is the last one applied, nothing is checked.
    again = province.load(centre_file(tmp_path, passwords))
    done = province.prepare_passwords(store, again, key)
    assert (done.hashed, done.checked, done.skipped_centres) == (0, 0, 1)
    assert province.apply(store, again, key).lines == ["Không có thay đổi (no changes)."]

    # One password changed: every account of the centre checked, one hashed anew.
    passwords["canbo3"] = "mat-khau-moi-3"
    changed = province.load(centre_file(tmp_path, passwords))
    done = province.prepare_passwords(store, changed, key)
    assert (done.hashed, done.checked) == (1, 6)
    assert province.apply(store, changed, key).lines == ["~ staff canbo3 (password_hash)"]
    stored = store.read(
        lambda conn: dict(conn.exec_driver_sql("SELECT username, password_hash FROM staff").all())
    )
    assert password_matches(stored["canbo3"], "mat-khau-moi-3")
    store.engine.dispose()


def test_the_digest_is_keyed(tmp_path):
    """A copy of the database alone gives no cheap test of a guessed password: the
    digest of a file holding passwords is an HMAC with a key the database does not hold."""
    from core.provisioning import file_digest, load

    data = load(centre_file(tmp_path, {"canbo1": "mat-khau-so-1"}))
    assert file_digest(data, b"a" * 32) != file_digest(data, b"b" * 32)
    assert file_digest(data, b"a" * 32) != file_digest(data)
