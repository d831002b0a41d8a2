"""Every command and API that takes a result, portfolio or store folder takes a storage URI too
(``s3://``, against conftest's local moto S3 server): it downloads what it reads through
:mod:`automl_chars.uris` and uploads what it writes; a URI it cannot use is refused, before any
work, by an error naming the option. Finished runs are the session's (conftest's
``finished_sweep``, ``built_portfolio``), uploaded to the bucket as another machine left them;
each read starts from an empty mirror cache ("another machine")."""

from __future__ import annotations

import warnings

import pytest
from support import BUCKET, listing, s3_uri, upload, uri_of

from automl_chars import uris
from automl_chars.cli.main import main
from automl_chars.errors import DamagedFileError
from automl_chars.store import ResultsStore
from automl_chars.store.store import rows

BAD = "nosuch://bucket/path"
#: Each command's folder (or file) option given a URI pyarrow cannot open, and the name the
#: error must give it. Each fails before data loads or Ray starts.
REFUSED = [
    (["show", BAD], "path"),
    (["pareto", BAD], "path"),
    (["pareto", "/nonexistent", "--out", BAD], "--out"),
    (["report", BAD], "DIR"),
    (["report", "/nonexistent", "--out", BAD], "--out"),
    (["store", "show", "--store", BAD], "--store"),
    (["store", "check", "--store", BAD], "--store"),
    (["store", "import", BAD], "path"),
    (["portfolio", "show", BAD], "path"),
    (["portfolio", "build", "--sources", "glyphs-digits", "--out", BAD], "--out"),
    (["portfolio", "build", "--sources", "glyphs-digits", "--out", "/tmp/x", "--from-sweep",
      BAD], "--from-sweep"),
    (["bohb", "--dataset", "glyphs-digits", "--warm-start", BAD], "--warm-start"),
    (["bohb", "--dataset", "glyphs-digits", "--store", BAD], "--store"),
    (["similarity", "--target", "glyphs-digits", "--portfolio", BAD], "--portfolio"),
]


@pytest.mark.parametrize("argv, option", REFUSED, ids=[" ".join(a[:2]) + f" {o}"
                                                       for a, o in REFUSED])
def test_a_uri_a_command_cannot_use_is_refused_naming_its_option(argv, option, cache, capsys,
                                                                  monkeypatch, data_root):
    from automl_chars.runner import cluster

    def no_ray(*args, **kwargs):
        raise AssertionError("Ray was joined")

    monkeypatch.setattr(cluster, "join", no_ray)
    monkeypatch.setattr(cluster, "precheck", no_ray)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {option} {BAD!r}: Unrecognized filesystem"), err
    assert not any(data_root.iterdir())  # refused before any data loaded


def test_a_store_at_a_uri_repairs_there_and_names_no_credentials(cache, s3_server, bucket,
                                                                capsys):
    """``store show|check --repair`` on a store at a URI: the damaged file is moved aside at
    the URI (moved only in the mirror, the next read would bring it back), and every message
    names the URI without the credentials it carries."""
    uri = s3_uri(s3_server, "team/store")
    store = ResultsStore(uri)
    written = {name: store.write(f"sweep:{name}", rows("sweep", name, "f", "cnn", [
        {"config": {"learning_rate": 0.01}, "budget": 1, "val_acc": 0.5}], f"/x/{name}"))
        for name in ("kept", "lost")}
    lost = written["lost"].name
    with bucket.open_output_stream(f"{BUCKET}/team/store/{lost}") as out:
        out.write(b"PAR1 garbage")
    cache("machine-2")
    assert main(["store", "show", "--store", uri]) == 0
    shown = capsys.readouterr().out
    assert "1 damaged file(s)" in shown and f"s3://{BUCKET}/team/store/{lost}" in shown
    assert "testing" not in shown  # the URI's credentials
    assert f"--store s3://{BUCKET}/team/store?scheme=http" in shown  # a command to copy
    assert main(["store", "check", "--repair", "--store", uri]) == 0
    assert f"Moved them into s3://{BUCKET}/team/store/damaged" in capsys.readouterr().out
    assert listing(bucket, "team/store") == {written["kept"].name, f"damaged/{lost}"}
    cache("machine-3")  # another machine: the store is whole
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert set(ResultsStore(uri).frame()["dataset"]) == {"kept"}
    assert main(["store", "check", "--store", uri]) == 0
    assert "0 damaged" in capsys.readouterr().out


@pytest.mark.slow
def test_result_commands_read_and_write_at_a_uri(finished_sweep, built_portfolio, cache,
                                                  s3_server, bucket, capsys):
    """``show``, ``pareto``, ``report``, ``store import|show`` and ``portfolio show`` on a sweep
    and a portfolio that only the bucket holds: each reads them from there, uploads what it
    writes (the plot, the page, the store's files), and names no credentials."""
    upload(bucket, finished_sweep.path, "team/sweep")
    upload(bucket, built_portfolio.path, "team/pf")
    root = s3_uri(s3_server, "team")
    sweep, pf = uri_of(root, "sweep"), uri_of(root, "pf")

    capsys.readouterr()
    assert main(["show", sweep]) == 0
    out = capsys.readouterr().out
    assert "Incumbent:" in out and f"Experiment: s3://{BUCKET}/team/sweep?" in out
    assert "testing" not in out

    cache("machine-2")
    assert main(["pareto", sweep, "--cost", "params"]) == 0
    assert f"Plot: s3://{BUCKET}/team/sweep/pareto.png" in capsys.readouterr().out
    assert "pareto.png" in listing(bucket, "team/sweep")

    cache("machine-3")
    page = uri_of(root, "pages/page.html")
    assert main(["report", sweep, pf, "--out", page]) == 0
    assert f"uploaded to s3://{BUCKET}/team/pages/page.html" in capsys.readouterr().out
    with bucket.open_input_stream(f"{BUCKET}/team/pages/page.html") as f:
        text = f.read().decode()
    assert "Portfolio pf" in text and "coloured by the budget" in text  # the trials' curves
    assert "No trial folder holds a progress.csv" not in text
    assert f"<code>s3://{BUCKET}/team/sweep?" in text and "testing" not in text
    assert main(["report", pf]) == 0  # the default page: into the (first) folder, uploaded
    assert "report.html" in listing(bucket, "team/pf")

    cache("machine-4")
    imported = uri_of(root, "imported")
    assert main(["store", "import", root, "--store", imported]) == 0
    out = capsys.readouterr().out
    assert "Imported 2 folders" in out and f"s3://{BUCKET}/team/pf?" in out
    cache("machine-5")
    frame = ResultsStore(imported).frame()
    assert set(frame["kind"]) == {"sweep", "portfolio"}
    assert frame["folder"].str.startswith(f"s3://{BUCKET}/team/").all()
    assert not frame["folder"].str.contains("testing").any()  # no credentials stored
    assert main(["store", "show", "--store", imported]) == 0
    assert "glyphs-digits" in capsys.readouterr().out
    assert main(["portfolio", "show", pf]) == 0
    assert "glyphs-digits" in capsys.readouterr().out


@pytest.mark.slow
def test_a_damaged_file_at_a_uri_names_it_and_following_the_advice_resumes(
        finished_sweep, cache, s3_server, bucket, capsys):
    """A sweep whose ``summary.json`` is damaged in the bucket: the error names the file's URI
    and says to act on the copy there, not on the local mirror (moved aside there, the next
    read would download the damaged file again). Done as it says, the same command with
    ``--resume`` writes the file again and keeps every trial."""
    import pandas as pd

    from automl_chars.layout import SUMMARY_FILE, TRIALS_FILE
    from automl_chars.runner.result import SweepResult

    upload(bucket, finished_sweep.path, "team/sweep")
    root = s3_uri(s3_server, "team")
    remote = f"{BUCKET}/team/sweep/{SUMMARY_FILE}"
    with bucket.open_input_stream(remote) as f:
        raw = f.read()
    with bucket.open_output_stream(remote) as f:
        f.write(raw[: len(raw) // 2])

    capsys.readouterr()
    assert main(["show", uri_of(root, "sweep")]) == 2
    err = capsys.readouterr().err
    where = f"s3://{BUCKET}/team/sweep/{SUMMARY_FILE}"
    assert err.startswith(f"error: {where} is damaged (truncated"), err
    assert "do it to the copy at that URI" in err and "local mirror" in err and "--resume" in err
    assert "testing" not in err
    mirror = uris.local_path(uri_of(root, "sweep")) / SUMMARY_FILE
    mirror.rename(mirror.with_name(f"{SUMMARY_FILE}.damaged"))  # not what it says to do:
    with pytest.raises(DamagedFileError):  # the next read downloads the damaged file again
        SweepResult.load(uri_of(root, "sweep"))

    bucket.move(remote, remote + ".damaged")  # the advice: at the URI
    argv = list(finished_sweep.argv)
    argv[argv.index("--storage") + 1] = root
    assert main([*argv, "--resume"]) == 0, capsys.readouterr()
    assert "Incumbent:" in capsys.readouterr().out
    assert SUMMARY_FILE in listing(bucket, "team/sweep")  # written again, at the URI
    cache("machine-2")
    resumed = SweepResult.load(uri_of(root, "sweep"))
    before = pd.read_csv(finished_sweep.path / TRIALS_FILE, dtype={"trial_id": str})
    assert set(resumed.trials["trial_id"]) == set(before["trial_id"])
    assert (resumed.trials["status"] == "TERMINATED").all()
