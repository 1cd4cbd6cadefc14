"""The CLI's shape: one registration pattern, run-time defaults, exit 2 with a clear message on bad input."""
from __future__ import annotations

import argparse

import pytest

from motionmatch import cli
from motionmatch.cli import beyond as cli_beyond
from motionmatch.cli.report import Report
from motionmatch.cli.args import Command, embeddings_dir

EXPECTED = {"generate-sample", "extract", "index", "search", "evaluate", "report", "calibrate", "train-head",
            "hybrid-index", "milvus-server", "models"}


def test_every_command_is_one_registered_class():
    parser, commands = cli.build_parser()
    assert set(commands) == EXPECTED
    assert all(issubclass(c, Command) and c.name and c.help for c in cli.ALL_COMMANDS)
    assert len({c.name for c in cli.ALL_COMMANDS}) == len(cli.ALL_COMMANDS)  # cli_beyond registered once
    assert set(cli_beyond.COMMANDS) == {"calibrate", "train-head", "hybrid-index"}
    for name in EXPECTED:
        with pytest.raises(SystemExit) as done:
            parser.parse_args([name, "--help"])
        assert done.value.code == 0


@pytest.mark.parametrize("argv, message", [
    (["search", "q.mp4", "-k", "0"], "-k must be > 0"),
    (["extract", "videos", "--batch-size", "1.5"], "--batch-size must be an integer"),
    (["calibrate", "--n-components", "-1"], "--n-components must be >= 0"),
])
def test_bad_numbers_exit_2_before_any_work(argv, message, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(argv)
    assert done.value.code == 2 and message in capsys.readouterr().err


def test_defaults_come_from_the_environment_when_the_command_runs(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "configured-embeddings"
    monkeypatch.setenv("MOTIONMATCH_EMBEDDINGS_DIR", str(folder))  # set after motionmatch.cli was imported
    assert embeddings_dir(argparse.Namespace(embeddings="")) == folder
    assert cli.main(["index", "--milvus-uri", str(tmp_path / "x.db")]) == 2
    err = capsys.readouterr().err
    assert f"{folder} has no extract_meta.json" in err and "motionmatch extract" in err
    assert cli.main(["search", "q.mp4", "--milvus-uri", "ftp://nowhere"]) == 2
    assert "unknown scheme" in capsys.readouterr().err
    assert cli.main(["report", "--param", "novalue"]) == 2
    assert "--param expects NAME=VALUE" in capsys.readouterr().err


def test_report_passes_model_store_and_folders_only_when_given(tmp_path, monkeypatch):
    parser, _ = cli.build_parser()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "my-model").mkdir()
    plain = Report.notebook_parameters(parser.parse_args(["report"]))
    assert not {"model_id", "milvus_uri", "collection", "embeddings_dir"} & set(plain)  # config decides in the notebook
    given = Report.notebook_parameters(parser.parse_args(
        ["report", "--model", "my-model", "--milvus-uri", "m.db", "--collection", "c1", "--embeddings", "emb",
         "--param", "clips_per_video=2", "--param", "name=text"]))
    assert given["model_id"] == str(tmp_path / "my-model")  # a folder: absolute (the kernel runs in notebooks/)
    assert given["milvus_uri"] == str(tmp_path / "m.db") and given["collection"] == "c1"
    assert given["embeddings_dir"] == str(tmp_path / "emb")
    assert given["clips_per_video"] == 2 and given["name"] == "text"
    hub = Report.notebook_parameters(parser.parse_args(["report", "--model", "facebook/vjepa2-vitl-fpc64-256",
                                                            "--milvus-uri", "http://127.0.0.1:19530"]))
    assert hub["model_id"] == "facebook/vjepa2-vitl-fpc64-256" and hub["milvus_uri"] == "http://127.0.0.1:19530"


def test_report_never_hands_the_main_collection_to_the_hybrid_or_long_notebooks():
    """--collection and --embeddings name the main index; notebooks 06 and 07 name theirs after their own
    settings, so run_all (which passes each notebook the parameters it declares) never gives them these."""
    from motionmatch import config
    from motionmatch.report.notebooks import list_notebooks, notebook_parameters

    declared = {path.name[:2]: set(notebook_parameters(path)) for path in list_notebooks()}
    assert "hybrid_collection" in declared["06"] and {"long_collection", "long_embeddings_dir"} <= declared["07"]
    assert not {"collection"} & (declared["06"] | declared["07"]) and "embeddings_dir" not in declared["07"]
    for names in declared.values():  # a parameter that config owns is named after its setting
        assert not {n for n in names if n.endswith(("_collection", "_dir", "_uri"))} - set(config.SETTINGS) - {
            "out_dir"}, names


def test_vjepa2_never_falls_back(tmp_path, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "a.mp4").write_bytes(b"not decoded: the encoder fails first")
    code = cli.main(["extract", str(videos), "--encoder", "vjepa2", "--model", str(tmp_path / "no-such-model"),
                     "--out", str(tmp_path / "emb")])
    captured = capsys.readouterr()
    assert code == 2 and "no-such-model" in captured.err and "flow" not in captured.out.lower()
    assert not (tmp_path / "emb" / "extract_meta.json").exists()
