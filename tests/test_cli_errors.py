"""Never a traceback: implausible audio, a closed pipe, Ctrl-C at start-up, a full disk and
unexpected errors all end the real `specmon` process with one line (or none) and an exit code."""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from monitor.audio import load_audio
from monitor.features import SAMPLE_RATE
from monitor.scorer import FAST_MODEL
from monitor.scoring import SCORE_HEADER
from tests.conftest import REPO, pick
from tests.test_score_cli import SPECMON, assert_one_line_error, run


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory, speech_dir: Path, manifest_rows) -> Path:
    """About 20 s of real speech as a 16 kHz WAV."""
    clips = pick(manifest_rows, "ravdess-05", "anger", 6)
    x = np.concatenate([load_audio(speech_dir / r["path"]) for r in clips])
    path = tmp_path_factory.mktemp("cli") / "speech.wav"
    sf.write(path, x, SAMPLE_RATE)
    return path


def test_implausible_audio_refused_in_one_line(tmp_path: Path, speech_wav: Path) -> None:
    """A WAV claiming 1 Hz and 64 channels (scored as 249 windows of garbage before), a 4 kHz file
    and a 16-channel file are refused, each in one line; the good file is still scored."""
    rng = np.random.default_rng(0)
    odd = tmp_path / "odd.wav"
    sf.write(odd, (rng.standard_normal((249 * 64, 64)) * 0.1).astype(np.float32), 1, subtype="PCM_16")
    slow = tmp_path / "slow.wav"
    sf.write(slow, (rng.standard_normal(4000 * 10) * 0.1).astype(np.float32), 4000)
    wide = tmp_path / "wide.wav"
    sf.write(wide, (rng.standard_normal((16000 * 5, 16)) * 0.1).astype(np.float32), 16000)
    p = run("score", str(odd), str(speech_wav), str(slow), str(wide))
    assert p.returncode == 1
    assert_one_line_error(p, f"{odd}: implausible audio header (1 Hz, 64 channel(s))",
                          f"{slow}: implausible audio header (4000 Hz", f"{wide}: implausible",
                          "3 of 4 file(s) could not be scored")
    assert len(p.stderr.splitlines()) == 4
    rows = list(csv.reader(io.StringIO(p.stdout)))
    assert {r[0] for r in rows[1:]} == {str(speech_wav)}


def test_telephone_audio_scored_with_a_warning(tmp_path: Path, speech_wav: Path) -> None:
    x, _ = sf.read(speech_wav, dtype="float32")
    tel = tmp_path / "phone.wav"
    sf.write(tel, soxr.resample(x, SAMPLE_RATE, 8000), 8000, subtype="PCM_16")
    p = run("score", str(tel), str(speech_wav))
    assert p.returncode == 0, p.stderr
    warn = [ln for ln in p.stderr.splitlines() if ln.startswith("specmon: warning:")]
    assert len(warn) == 1 and str(tel) in warn[0] and "telephone" in warn[0] and "4 kHz" in warn[0]
    assert "Traceback" not in p.stderr
    rows = list(csv.reader(io.StringIO(p.stdout)))
    assert sum(r[0] == str(tel) for r in rows) >= 10


def test_closed_pipe_exits_quietly(speech_wav: Path) -> None:
    """`specmon score ... | head -1` in a real shell: the header, then a quiet exit (the rows of
    three files at a 32-ms stride are far more than the pipe holds, so the write does break). The
    fast model: Whisper's ~0.1 s a window would make these ~500 windows take minutes."""
    cmd = " ".join([*SPECMON, "score", "--model", str(FAST_MODEL), "--stride", "0.032",
                    *[str(speech_wav)] * 3])
    p = subprocess.run(["bash", "-c", f"{cmd} | head -1; echo \"status ${{PIPESTATUS[0]}}\""],
                       capture_output=True, text=True, timeout=300, cwd=REPO)
    lines = p.stdout.splitlines()
    assert lines[0] == ",".join(SCORE_HEADER)
    assert lines[1] == "status 1"  # the writer saw the pipe break (rows were left unwritten)
    assert p.stderr == ""


def _sigint_default() -> None:
    """In the child: SIGINT as a terminal's foreground job has it. A runner started in the
    background (nohup, `&` in a script) hands its children SIGINT ignored, and Python keeps an
    ignored SIGINT ignored, as any Unix program does."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt_after(delay: float, args: list[str], env: dict) -> subprocess.CompletedProcess | None:
    """The run, interrupted with SIGINT after `delay` s; None if it had already ended by then
    (on a loaded machine a run's pace varies, and a late signal tests nothing)."""
    proc = subprocess.Popen([*SPECMON, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=REPO, preexec_fn=_sigint_default)
    time.sleep(delay)
    if proc.poll() is not None:
        proc.communicate()
        return None
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_ctrl_c_during_start_up_exits_130(tmp_path: Path, speech_wav: Path) -> None:
    """With an empty numba cache, start-up (imports, model load, kernel compile) takes seconds;
    Ctrl-C anywhere in it ends the process with 130 and nothing on stderr."""
    t0 = time.monotonic()
    cold = subprocess.run([*SPECMON, "score", str(speech_wav)], capture_output=True, cwd=REPO,
                          env=dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba-0")))
    whole = time.monotonic() - t0  # mostly start-up: scoring 20 s of audio takes ~0.1 s
    assert cold.returncode == 0
    codes = []
    for i, share in enumerate((0.1, 0.3, 0.5, 0.7), start=1):
        env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / f"numba-{i}"))
        p = _interrupt_after(share * whole, ["score", str(speech_wav)], env)
        if p is None:
            continue
        # -SIGINT: the signal came before Python's own handler was installed (a loaded machine);
        # a shell reports that as 130 too.
        assert p.returncode in (130, -signal.SIGINT), (share, whole, p.returncode, p.stderr)
        assert p.stderr == "", (share, p.stderr)
        codes.append(p.returncode)
    assert 130 in codes  # at least one interrupt reached specmon's own start-up
    # Mid-compile for sure: numba has just cached its first kernel and compiles the next.
    cache = tmp_path / "numba-mid"
    proc = subprocess.Popen([*SPECMON, "score", str(speech_wav)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=REPO, preexec_fn=_sigint_default,
                            env=dict(os.environ, NUMBA_CACHE_DIR=str(cache)))
    deadline = time.monotonic() + 120
    while not any(cache.rglob("*.nbi")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert (proc.returncode, out, err) == (130, "", "")


def test_ctrl_c_while_scoring_keeps_whole_files(tmp_path: Path, speech_wav: Path) -> None:
    """Ctrl-C during scoring (numba's kernels and the model running): exit 130, no trace, and the
    CSV holds the header and whole files' rows only."""
    one = run("score", "--stride", "0.1", str(speech_wav))
    per_file = len(one.stdout.splitlines()) - 1
    assert one.returncode == 0 and per_file > 100
    out = tmp_path / "part.csv"
    for delay in (1.5, 2.5):
        out.unlink(missing_ok=True)
        p = _interrupt_after(delay, ["score", "--stride", "0.1", "-o", str(out),
                                     *[str(speech_wav)] * 400], dict(os.environ))
        assert p is not None and p.returncode == 130, (delay, p and p.stderr)
        assert p.stderr == ""
        if out.exists():  # else interrupted before it was opened
            rows = list(csv.reader(open(out, newline="")))
            assert rows[0] == SCORE_HEADER and (len(rows) - 1) % per_file == 0


def test_full_disk_is_one_line(speech_wav: Path) -> None:
    p = run("score", str(speech_wav), "-o", "/dev/full")
    assert p.returncode == 2
    assert_one_line_error(p, "/dev/full: cannot write (No space left on device)")


FAILING_COMMAND = textwrap.dedent("""
    import sys
    from monitor.cli import app, main

    @app.command()
    def explode() -> None:
        raise RuntimeError("first line\\nsecond line")

    main(sys.argv[1:])
""")


def test_unexpected_error_is_one_line_and_the_trace_goes_to_debug(tmp_path: Path) -> None:
    """Any exception the commands do not expect: one line on stderr and exit 1; the full trace
    only in the --debug file, wherever the option stands."""
    p = subprocess.run([sys.executable, "-c", FAILING_COMMAND, "explode"], capture_output=True,
                       text=True, cwd=REPO, timeout=120)
    assert p.returncode == 1
    assert p.stderr.splitlines() == [
        "specmon: error: unexpected RuntimeError: first line second line "
        "(rerun with --debug FILE to save the full trace)"]
    log = tmp_path / "debug.log"
    for args in (["--debug", str(log), "explode"], ["explode", f"--debug={log}"]):
        p = subprocess.run([sys.executable, "-c", FAILING_COMMAND, *args], capture_output=True,
                           text=True, cwd=REPO, timeout=120)
        assert p.returncode == 1
        assert p.stderr.splitlines() == [
            f"specmon: error: unexpected RuntimeError: first line second line (full trace in {log})"]
    text = log.read_text()
    assert text.count("Traceback (most recent call last)") == 2
    assert "in explode" in text and "RuntimeError: first line" in text


def test_evaluate_with_a_torn_manifest_row(tmp_path: Path) -> None:
    """A manifest row cut short (a real failure of the manifest reader): one line, no trace."""
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,corpus,speaker,gender,emotion,language,seconds\nclip.flac,emodb\n")
    p = run("evaluate", "--manifest", str(manifest), "--out", str(tmp_path / "ev"))
    assert p.returncode != 0
    assert_one_line_error(p)
    assert len(p.stderr.splitlines()) == 1


def test_an_inherited_ignored_sigint_does_not_stay_ignored() -> None:
    """A background job of a script inherits SIGINT ignored; the session's handler takes it anyway,
    so after the CLI's imports Ctrl-C must raise again, or it would be lost between handlers."""
    code = ("import signal, monitor.cli; "
            "print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert p.returncode == 0 and p.stdout.strip() == "True", (p.stdout, p.stderr)
