"""Hyperparameter sweeps on Optuna (samplers, pruners and a study store), each trial an ordinary run.

Optuna (https://optuna.org) brings what a sweep needs and we would otherwise hand-write: grid,
random and TPE samplers, median and successive-halving pruners, and a study store (SQLite in the
sweep directory, or any database URL) that lets worker processes, on one machine or several,
draw distinct trials from one sweep.

A sweep lives in `<out_dir>/<name>/`: `sweep.json` (what to search), `study.db`, one run
directory per trial (`trial-<k>/`), worker logs, `results.csv` and the plots. Trials are handed
out under a file lock, so the workers of one machine never overshoot the trial budget; workers
on other machines may overshoot it by at most one trial each.

Interruption: a trial stopped by Ctrl-C, a kill or a dead worker stays RUNNING in the store; the
next `--resume` marks such trials as failed (`interrupted`) and runs their parameters again: this
machine's whose worker process is gone, and any machine's whose worker has not said it is alive
(a heartbeat every HEARTBEAT_SECONDS while its trial runs) for STALE_SECONDS, as when a machine
dies. Finished trials (complete, pruned, or failed with an error) are never redone.
"""
import dataclasses
import functools
import json
import math
import os
import socket
import stat
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from makemore.config import THREADS_ENV, DataConfig, TrainConfig, option_name
from makemore.data import load_corpus
from makemore.device import free_cpus, threads_from_env
from makemore.errors import MakemoreError
from makemore.files import fcntl, make_dir, open_appending, write_csv, write_json  # fcntl is None on Windows
from makemore.models import MODELS, model_config
from makemore.processes import child_env, forwarding_signals
from makemore.runs import Run, open_pretrained, run_training
from makemore.search import JOURNAL, PASSWORD_ENV, SweepConfig, check_storage
from makemore.tasks import task_of
from makemore.trainer import warmup_of

# ----------------------------------------------------------------------------------------------
# a new sweep, and when its trials may be pruned


def settled_at(run):
    """The step from which a trial's val figures speak for its settings, and it may be pruned: its learning
    rate has warmed up and, for a classifier finetuned with --freeze-steps, its body has thawed. Before
    then a loss says more of how far the schedule has got than of the setting."""
    return max(warmup_of(run.train_config), run.task.settled_at(run))


# ----------------------------------------------------------------------------------------------
# the study


def storage_for(cfg, sweep_dir):
    return open_store(cfg.storage or f"sqlite:///{(sweep_dir / 'study.db').resolve()}")


def open_store(url):
    """The study store at url: Optuna's journal in a file (journal:PATH, for machines that share a filesystem
    but no database) or a database (any SQLAlchemy URL; SQLite in the sweep folder by default)."""
    import optuna

    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    password = os.environ.get(PASSWORD_ENV)
    if url.startswith(JOURNAL):
        check_journal(url.removeprefix(JOURNAL))
    try:
        if url.startswith(JOURNAL):
            from optuna.storages.journal import JournalFileBackend

            return optuna.storages.JournalStorage(JournalFileBackend(url.removeprefix(JOURNAL)))
        return optuna.storages.RDBStorage(connection_url(url, password), engine_kwargs=kwargs)
    except Exception as e:  # noqa: BLE001 - a bad URL, an unreachable server, a missing driver
        why = first_line(e).replace(password, "***") if password else first_line(e)
        if url.startswith(JOURNAL) and isinstance(e, ValueError):  # JSON or UTF-8 that does not decode
            raise MakemoreError(f"the journal {url.removeprefix(JOURNAL)} is damaged or not a sweep's journal "
                                f"({type(e).__name__}: {why}); check --storage") from None
        raise MakemoreError(f"cannot open the study store {url} ({type(e).__name__}: {why}); check --storage"
                            + (f" and {PASSWORD_ENV}" if password else "")) from None


MAX_JOURNAL_BYTES = 256 << 20  # a sweep's journal holds a few KB per trial: one larger than this is something else


def check_journal(path):
    """A journal is read whole into memory by Optuna: it must be a regular file (or none yet: a new one), and of a
    journal's size; a device (/dev/zero), a pipe, a folder or a huge file is refused before it is read."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    except OSError as e:
        raise MakemoreError(f"cannot read the journal {path} ({e.strerror or e}); check --storage") from None
    if not stat.S_ISREG(st.st_mode):
        raise MakemoreError(f"--storage journal:{path} is not a regular file (a device, a pipe or a folder); pass the "
                            "path of a sweep's journal file, or of a new one")
    if st.st_size > MAX_JOURNAL_BYTES:
        raise MakemoreError(f"--storage journal:{path} is {st.st_size >> 20:,} MB, far larger than a sweep's journal "
                            f"(at most {MAX_JOURNAL_BYTES >> 20} MB is read); check --storage")


def connection_url(url, password):
    """The store's URL for the connection only (never shown or saved): with the password of PASSWORD_ENV, and
    postgresql:// read through psycopg (3, the postgres extra) where psycopg2, SQLAlchemy's default, is missing."""
    if url.startswith("sqlite"):
        return url
    from sqlalchemy.engine import make_url  # Optuna's own dependency; escapes the password as URLs need

    parsed = make_url(url)
    if parsed.drivername == "postgresql" and not importable("psycopg2") and importable("psycopg"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if password:
        parsed = parsed.set(password=password)
    return parsed.render_as_string(hide_password=False)


def importable(module):
    import importlib.util

    return importlib.util.find_spec(module) is not None


def first_line(error):
    """An error's message without the lines some libraries add (SQLAlchemy's 'Background on this error')."""
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def open_study(cfg, sweep_dir, create=False, worker=0):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = cfg.space()
    seed = (cfg.sampler_seed + 7919 * worker) % 2**32  # workers that share a seed would propose the same trials
    if cfg.sampler == "grid":
        # not the worker's seed: optuna shuffles the points by it and gives trial k point k, so workers
        # with their own orders ran some points twice and others never
        sampler = grid_sampler({p.name: p.grid() for p in space}, cfg.sampler_seed)
    elif cfg.sampler == "random":
        sampler = optuna.samplers.RandomSampler(seed=seed)
    else:
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, max(2, cfg.trials // 3)))
    pruner = {
        "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=0),
        "halving": lambda: optuna.pruners.SuccessiveHalvingPruner(),
        "none": lambda: optuna.pruners.NopPruner(),
    }[cfg.pruner]()
    try:  # a new sweep's study must be new: two sweeps of one name started together, on one machine or two, get
        # one study between them, which the store's unique names give to one of them
        study = optuna.create_study(storage=storage_for(cfg, sweep_dir), study_name=cfg.name, sampler=sampler,
                                    pruner=pruner, direction="minimize", load_if_exists=not create)
    except optuna.exceptions.DuplicatedStudyError:
        where = f"the store {cfg.storage}" if cfg.storage else f"{sweep_dir / 'study.db'}"
        raise MakemoreError(f"a sweep named {cfg.name} is in {where} already (started by another process?); join it "
                            "with --resume, or pass another --name") from None
    if create:
        study.set_user_attr("config", asdict(cfg))
    return study


def grid_sampler(grid, seed):
    import optuna

    class Grid(optuna.samplers.GridSampler):
        def after_trial(self, study, trial, state, values):
            """Optuna's stops the study when the last point is told, which raises outside study.optimize():
            the worker that ran it crashed. Here the trial budget (the grid's size at most) ends the sweep."""

    return Grid(grid, seed=seed)


def grid_size(cfg):
    return math.prod(len(p.grid()) for p in cfg.space()) if cfg.sampler == "grid" else None


def budget(cfg):
    size = grid_size(cfg)
    return min(cfg.trials, size) if size else cfg.trials


def counted(trial):
    """Trials that use up the budget: all but waiting ones and interrupted ones (those run again)."""
    from optuna.trial import TrialState

    if trial.state == TrialState.WAITING:
        return False
    return not (trial.state == TrialState.FAIL and trial.user_attrs.get("interrupted"))


def finished(trial):
    """Trials that ran to their end (complete, pruned or failed), not interrupted ones (those run again)."""
    return trial.state.is_finished() and not trial.user_attrs.get("interrupted")


# ----------------------------------------------------------------------------------------------
# workers

HEARTBEAT_SECONDS = 60  # how often a worker records that its trial still runs
STALE_SECONDS = 600  # a trial of another machine not heard of for this long was left by a dead machine


@contextmanager
def heartbeat(storage, trial_id):
    """While the block runs, a thread records every HEARTBEAT_SECONDS that the trial's worker is alive
    (the trial's alive_at, in seconds since the epoch), so that a --resume on another machine can tell the
    trial of a dead machine from one that still runs."""
    stop = threading.Event()

    def beat():
        while True:
            try:
                storage.set_trial_user_attr(trial_id, "alive_at", time.time())
            except Exception:  # noqa: BLE001, S110 - a store that does not answer now: the next beat tries again
                pass
            if stop.wait(HEARTBEAT_SECONDS):
                return

    thread = threading.Thread(target=beat, name="makemore-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


CREATE_LOCK = ".create.lock"  # held while a sweep is created in its folder


def check_new_sweep(sweep_dir):
    """A new sweep goes into a folder of its own: one that does not exist yet, or is empty."""
    if (sweep_dir / "sweep.json").exists():
        raise MakemoreError(f"sweep {sweep_dir} exists; pass --resume to carry on, --report to see it, or another "
                            "--name")
    if sweep_dir.is_file() or sweep_dir.is_dir() and any(p.name != CREATE_LOCK for p in sweep_dir.iterdir()):
        raise MakemoreError(f"{sweep_dir} is not empty, and makemore writes a new sweep only into a folder of its "
                            "own; pass another --name or --out-dir")


@dataclass
class Sweep:
    cfg: SweepConfig
    dir: Path

    @classmethod
    def create(cls, cfg, out_dir):
        sweep_dir = Path(out_dir) / cfg.name
        if not (sweep_dir / CREATE_LOCK).exists():  # else a sweep is (being) made there: told once under its lock
            check_new_sweep(sweep_dir)
        check_inputs(cfg)
        new = not sweep_dir.exists()
        make_dir(sweep_dir)
        with open_appending(sweep_dir / CREATE_LOCK) as lock:
            if fcntl is not None:  # two sweeps of one name started together: the second waits, then is refused
                fcntl.flock(lock, fcntl.LOCK_EX)
            check_new_sweep(sweep_dir)
            try:  # before sweep.json: a store that cannot be opened leaves no sweep behind to get in the way
                open_study(cfg, sweep_dir, create=True)
            except MakemoreError:
                if new:
                    (sweep_dir / CREATE_LOCK).unlink()
                    sweep_dir.rmdir()
                raise
            write_json(sweep_dir / "sweep.json", asdict(cfg))
        return cls(cfg, sweep_dir)

    @classmethod
    def open(cls, name, out_dir, storage=None):
        """A sweep from its directory, or (on a machine joining it) from the study store."""
        check_storage(storage)
        sweep_dir = Path(out_dir) / name
        path = sweep_dir / "sweep.json"
        if path.exists():
            try:
                raw = json.loads(path.read_text())
                cfg = SweepConfig(**{**raw, **({"storage": storage} if storage else {})})
            except (json.JSONDecodeError, TypeError) as e:
                raise MakemoreError(f"{path} is damaged ({e}); start a new sweep with another --name") from None
            return cls(cfg, sweep_dir)
        if not storage:
            raise MakemoreError(f"no sweep at {sweep_dir}; start one with --param or --space, "
                                "or join one on another machine with --storage URL")
        if storage.startswith(JOURNAL) and not Path(storage.removeprefix(JOURNAL)).is_file():
            raise MakemoreError(f"there is no journal at {storage.removeprefix(JOURNAL)}; check --storage (the journal "
                                "is the file the sweep was started with)")
        import optuna

        try:
            summaries = {s.study_name: s for s in optuna.get_all_study_summaries(open_store(storage),
                                                                                 include_best_trial=False)}
        except Exception as e:  # noqa: BLE001 - as in storage_for: the store's driver raises its own types
            raise MakemoreError(f"cannot read the study store {storage} ({first_line(e)}); check --storage") from None
        if name not in summaries or "config" not in summaries[name].user_attrs:
            raise MakemoreError(f"the store {storage} has no sweep named {name}; check --name")
        cfg = SweepConfig(**{**summaries[name].user_attrs["config"], "storage": storage})
        make_dir(sweep_dir)
        write_json(path, asdict(cfg))
        return cls(cfg, sweep_dir)

    def study(self, worker=0):
        return open_study(self.cfg, self.dir, worker=worker)

    # -- recovery -------------------------------------------------------------------------------
    def recover(self):
        """Trials left RUNNING by a dead worker (see stale): mark them interrupted, queue their parameters again."""
        from optuna.trial import TrialState

        study = self.study()
        storage = study._storage
        again = 0
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if not stale(t):
                continue
            storage.set_trial_user_attr(t._trial_id, "interrupted", True)
            storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
            study.enqueue_trial(t.params, skip_if_exists=False)
            again += 1
        return again

    # -- one worker -----------------------------------------------------------------------------
    def next_trial(self, study):
        """The next trial to run, or None when the budget is used. Under a lock: workers here never overshoot."""
        with open_appending(self.dir / ".trials.lock") as lock:
            if (
                fcntl is not None
            ):  # else (Windows) the workers here may overshoot by a trial each, as other machines' do
                fcntl.flock(lock, fcntl.LOCK_EX)
            if sum(counted(t) for t in study.get_trials(deepcopy=False)) >= budget(self.cfg):
                return None
            trial = study.ask()
            trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
            return trial

    def work(self, worker=0, log=print):
        """Run trials until the budget is used or this process is interrupted."""
        study = self.study(worker)
        while (trial := self.next_trial(study)) is not None:
            if self.run_trial(study, trial, log) == "interrupted":
                return "interrupted"
        return "done"

    def run_trial(self, study, trial, log):
        import optuna
        from optuna.trial import TrialState

        values = {p.name: p.suggest(trial) for p in self.cfg.space()}
        settings = {**self.cfg.fixed, **values}
        data_names = {f.name for f in dataclasses.fields(DataConfig)}
        train_names = {f.name for f in dataclasses.fields(TrainConfig)}
        run_dir = self.dir / f"trial-{trial.number}"
        trial.set_user_attr("run_dir", str(run_dir))
        trial.set_user_attr("command", train_command(self.cfg, settings))
        start = time.time()
        seen = {}
        # read once from the config run_training writes before the first validation
        settled = functools.cache(lambda: settled_at(Run.open(run_dir)))

        def on_validate(step, value):  # the trial's val loss, or a classifier's val error rate
            seen[step] = value
            trial.report(value, step)
            if step > settled() and trial.should_prune():
                raise optuna.TrialPruned

        def record(state, **extra):
            best = min(seen.values()) if seen else None
            attrs = {"objective": best, "steps": max(seen) if seen else 0, "seconds": round(time.time() - start, 1),
                     **extra}
            for k, v in attrs.items():
                trial.set_user_attr(k, v)
            # a pruned trial's value is its last report
            study.tell(trial, best if state == TrialState.COMPLETE else None, state=state)
            name = objective(self.cfg)[0].replace("_", " ")
            what = f"{name} {best:.4f}" if best is not None else extra.get("error", "")
            log(f"trial {trial.number}: {state.name.lower()} {what} ({fmt_params(values)}) {attrs['seconds']:.0f} s")

        try:
            data = data_config(self.cfg, settings)
            model_overrides = {k: v for k, v in settings.items() if k not in data_names | train_names}
            train = {"log_interval": 10**9, **{k: v for k, v in settings.items() if k in train_names}}
            with heartbeat(study._storage, trial._trial_id):
                reason, metrics = run_training(run_dir, self.cfg.model, model_overrides, data, train,
                                               log=lambda _: None, on_validate=on_validate,
                                               pretrained=self.cfg.pretrained, backward=self.cfg.backward)
        except optuna.TrialPruned:
            record(TrialState.PRUNED)
            return "pruned"
        except Exception as e:  # noqa: BLE001 - the sweep goes on: a bad configuration, out of memory, a NaN loss
            record(TrialState.FAIL, error=f"{type(e).__name__}: {e}" if not isinstance(e, MakemoreError) else str(e))
            return "failed"
        if reason == "interrupted":
            return "interrupted"  # left RUNNING: --resume runs it again
        scores = {k: metrics[k] for k in VAL_FIGURES if k in metrics}
        record(TrialState.COMPLETE, train_loss=metrics["train_loss"], parameters=metrics["parameters"],
               device=metrics["device"], **scores)
        return "complete"


def check_inputs(cfg):
    """Every trial reads the same data, and finetunes from the same language model (two, with --backward):
    check them once, before the sweep starts, rather than fail every trial (the data options of the check
    are the sweep's fixed ones)."""
    train = {f.name for f in dataclasses.fields(TrainConfig)}
    TrainConfig(**{k: v for k, v in cfg.fixed.items() if k in train})  # a fixed value of the wrong type, say
    corpus = load_corpus(data_config(cfg, cfg.fixed), log=lambda _: None, labeled=task_of(cfg.model).labeled)
    if cfg.pretrained:
        lm = open_pretrained(cfg.pretrained, corpus, log=print)
        if cfg.backward:
            open_pretrained(cfg.backward, corpus, log=print, like=lm)


def data_config(cfg, settings):
    """The data a trial reads: the sweep's --data, with the data options among its settings."""
    names = {f.name for f in dataclasses.fields(DataConfig)}
    return DataConfig(data=cfg.data, **{k: v for k, v in settings.items() if k in names})


def stale(trial, now=None):
    """Whether a RUNNING trial's worker is dead: on this machine, its process is gone; on another, it has not
    said it is alive for STALE_SECONDS (a trial of an older makemore, which never says so, counts as alive)."""
    worker_host, _, pid = trial.user_attrs.get("worker", "").rpartition(":")
    if worker_host == socket.gethostname():
        return not (pid.isdigit() and pid_alive(int(pid)))
    alive_at = trial.user_attrs.get("alive_at")
    return isinstance(alive_at, (int, float)) and (now or time.time()) - alive_at > STALE_SECONDS


def pid_alive(pid):
    if os.name == "nt":  # os.kill(pid, 0) is no probe there: signal 0 is CTRL_C_EVENT, sent to the process
        return True      # so a dead worker's trial stays running, and is not run again by --resume
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fmt_params(values):
    return ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())


def train_command(cfg, settings):
    """The `makemore train` (or `finetune`) command that reproduces a trial."""
    if cfg.pretrained:
        backward = [f"--backward {cfg.backward}"] if cfg.backward else []
        args = ["makemore finetune", f"--from {cfg.pretrained}", *backward, f"--data {cfg.data}"]
    else:
        args = ["makemore train", f"--model {cfg.model}", f"--data {cfg.data}"]
    for k, v in settings.items():
        args.append(f"{option_name(k)} {v:.6g}" if isinstance(v, float) else f"{option_name(k)} {v}")
    return " ".join(args)


# ----------------------------------------------------------------------------------------------
# running a sweep on this machine


def run_workers(sweep, parallel, log=print):
    """Start `parallel` worker processes on this machine, follow the store, and wait for them."""
    if parallel < 1:
        raise MakemoreError(f"--parallel must be positive, got {parallel}")
    warn_single_validation(sweep.cfg, log)
    if again := sweep.recover():
        log(f"{again} interrupted trial(s) will run again")
    study = sweep.study()
    trials = study.get_trials(deepcopy=False)
    reported = {t.number for t in trials if finished(t)}
    left = budget(sweep.cfg) - sum(counted(t) for t in trials)
    if left <= 0:  # finished, or the rest running elsewhere
        log(f"sweep {sweep.dir}: all {budget(sweep.cfg)} trials are finished or running; nothing to start")
        return "done"
    if parallel > left:  # a worker with no trial to run would only load torch and stop
        log(f"sweep {sweep.dir}: {left} trial(s) left, so {left} worker(s) rather than --parallel {parallel}")
        parallel = left
    on_cpu = sweep.cfg.fixed.get("device", "auto") == "cpu" or not cuda_present()
    if on_cpu and parallel > (os.cpu_count() or 1):
        log(f"sweep {sweep.dir}: --parallel {parallel} is more workers than this machine's {os.cpu_count()} CPUs; "
            "they will share them, each slower")
    logs = sweep.dir / "logs"
    logs.mkdir(exist_ok=True)
    env = child_env(os.environ)
    if on_cpu:
        threads = max(1, (threads_from_env() or free_cpus()) // parallel)  # share the free cores, not fight over them
        env[THREADS_ENV] = str(threads)
    command = [sys.executable, "-m", "makemore", "sweep", "--name", sweep.cfg.name, "--out-dir", str(sweep.dir.parent)]
    if sweep.cfg.storage:
        command += ["--storage", sweep.cfg.storage]
    workers = []
    for k in range(parallel):
        out = open_appending(logs / f"worker-{k}.log")  # open while the worker runs, closed below
        # each in its own session: a signal reaches it once, passed on from here (forwarding_signals)
        proc = subprocess.Popen([*command, "--worker", str(k)], stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
        workers.append((proc, out))
    before = f" ({len(reported)} finished before)" if reported else ""
    log(f"sweep {sweep.dir}: {budget(sweep.cfg)} trials of {sweep.cfg.model} on {sweep.cfg.data}{before}, "
        f"{parallel} worker(s) here (logs in {logs})")
    try:  # Ctrl-C or SIGTERM here reach the workers, which save their trial and stop; the sweep sees them end
        with forwarding_signals([p for p, _ in workers]):
            while True:
                alive = [p for p, _ in workers if p.poll() is None]
                reported |= follow(sweep, study, reported, log)
                if not alive:
                    break
                time.sleep(1.0)
    finally:
        for _, out in workers:
            out.close()
    by_signal = (130, 143)  # interrupted, terminated
    stopped = [k for k, (p, _) in enumerate(workers) if p.returncode in by_signal or p.returncode < 0]
    crashed = [k for k, (p, _) in enumerate(workers) if p.returncode not in (0, *by_signal) and p.returncode > 0]
    left = sweep.recover() if stopped or crashed else 0
    if crashed:
        log(f"worker(s) {', '.join(map(str, crashed))} stopped with an error (see {logs}); "
            f"{left} unfinished trial(s) run again with --resume")
    if stopped:  # a worker killed or told to stop (SIGTERM) leaves its trial for --resume, and the sweep says so
        log(f"worker(s) {', '.join(map(str, stopped))} were stopped by a signal; {left} unfinished trial(s) run again "
            "with --resume")
        return "interrupted"
    return "done"


def warn_single_validation(cfg, log):
    """A trial validated only at its end gives the pruner nothing and curves.png one point: say so."""
    if {"max_steps", "eval_interval"} & set(cfg.params) or cfg.model not in MODELS:
        return
    model = MODELS[cfg.model]
    own = {k: v for k, v in cfg.fixed.items() if k in {f.name for f in dataclasses.fields(model.config)}}
    given = {k: v for k, v in cfg.fixed.items() if k in {f.name for f in dataclasses.fields(TrainConfig)}}
    try:
        train = TrainConfig(**{**model.train_defaults(model_config(cfg.model, **own)), **given})
    except MakemoreError:  # a bad setting: every trial says so
        return
    if train.eval_interval >= train.max_steps > 0:
        log(f"warning: each trial validates once, at its end (--eval-interval {train.eval_interval:,} against "
            f"--max-steps {train.max_steps:,}): the pruner cannot stop a poor trial early and curves.png gets one "
            f"point per trial; pass an --eval-interval below --max-steps")


def cuda_present():
    import torch

    return torch.cuda.is_available()


def follow(sweep, study, reported, log):
    """Print each trial that finished since the last look, with the best so far."""
    from optuna.trial import TrialState

    new, name = set(), objective(sweep.cfg)[0].replace("_", " ")
    trials = study.get_trials(deepcopy=False)
    done = sorted(filter(finished, trials), key=lambda t: t.datetime_complete)
    for k, t in enumerate(done):
        if t.number in reported:
            continue
        new.add(t.number)
        best = min((objective_of(x) for x in done[: k + 1] if x.state == TrialState.COMPLETE), default=None)
        what = f"{name} {objective_of(t):.4f}" if objective_of(t) is not None else t.user_attrs.get("error", "")
        log(f"[{len(reported) + len(new)}/{budget(sweep.cfg)}] trial {t.number} {t.state.name.lower()}: {what}"
            f"  ({fmt_params(t.params)})  best so far {'none' if best is None else f'{best:.4f}'}")
    return new


# ----------------------------------------------------------------------------------------------
# results


RESULT_COLUMNS = ["train_loss", "steps", "seconds", "parameters", "error", "run_dir"]
VAL_FIGURES = ["val_loss", "val_accuracy", "val_macro_f1"]  # a trial records those of its best checkpoint it has


def objective(cfg):
    """What a sweep minimises, as a column name and an axis label: what its trials keep their best
    checkpoint by (Trainer.validate), a language model's val loss or a classifier's val error rate."""
    return task_of(cfg.model).objective


def objective_of(trial):
    """A trial's best validated objective (sweeps made before val_error recorded it as val_loss)."""
    return trial.user_attrs.get("objective", trial.user_attrs.get("val_loss"))


def result_columns(cfg):
    """The columns of results.csv after the searched settings: the objective, a classifier's scores, the rest."""
    return [objective(cfg)[0], *task_of(cfg.model).score_columns, *RESULT_COLUMNS]


def results(sweep, study):
    """One row per trial (interrupted attempts left out: their parameters ran again)."""
    rows, (key, _), columns = [], objective(sweep.cfg), result_columns(sweep.cfg)
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get("interrupted"):
            continue
        a = t.user_attrs
        row = {"trial": t.number, "state": t.state.name.lower(), **{p: t.params.get(p) for p in sweep.cfg.params},
               **{k: a.get(k) for k in columns}, key: objective_of(t),
               "curve": dict(sorted(t.intermediate_values.items()))}
        rows.append(row)
    return rows


def write_report(sweep, log=print, top=10):
    """results.csv, the plots, a ranked table and the command of the best trial."""
    from makemore import plots

    study = sweep.study()
    rows = results(sweep, study)
    columns = ["trial", "state", *sweep.cfg.params, *result_columns(sweep.cfg)]
    write_csv(sweep.dir / "results.csv", columns, rows, extrasaction="ignore")
    space = sweep.cfg.space()
    importance = importances(sweep, study)
    key, label = objective(sweep.cfg)
    written = plots.sweep_plots(rows, space, importance, sweep.dir,
                                f"sweep {sweep.cfg.name}: {sweep.cfg.model} on {sweep.cfg.data}", (key, label))
    ranked = sorted((r for r in rows if r[key] is not None), key=lambda r: r[key])
    states = [s for s in ("complete", "pruned", "fail", "running") if any(r["state"] == s for r in rows)]
    log(f"{len(rows)} trials: " + ", ".join(f"{sum(r['state'] == s for r in rows)} {s}" for s in states))
    if ranked:
        scores = task_of(sweep.cfg.model).score_columns
        head = ["rank", "trial", "state", key, *scores, *sweep.cfg.params, "steps", "seconds"]
        table = [head]
        for k, r in enumerate(ranked[:top], 1):
            table.append([str(k), str(r["trial"]), r["state"], f"{r[key]:.4f}",
                          *["" if r[c] is None else f"{r[c]:.4f}" for c in scores],
                          *[f"{r[p]:.4g}" if isinstance(r[p], float) else str(r[p]) for p in sweep.cfg.params],
                          str(r["steps"]), f"{r['seconds']:.0f}"])
        widths = [max(len(row[i]) for row in table) for i in range(len(head))]
        for row in table:
            log("  ".join(cell.rjust(w) for cell, w in zip(row, widths)))
        best = [r for r in ranked if r["state"] == "complete"] or ranked
        trial = study.trials[best[0]["trial"]]
        log(f"best: trial {trial.number}, {label} {best[0][key]:.4f}; reproduce it with:\n  "
            f"{trial.user_attrs['command']}")
    if importance:
        log("importance: " + ", ".join(f"{k} {v:.2f}" for k, v in importance.items()))
    log(f"wrote {', '.join(str(p) for p in [sweep.dir / 'results.csv', *(p.name for p in written)])}")
    return rows


def importances(sweep, study):
    """Optuna's parameter importances (its default evaluator) over complete trials; empty when too few."""
    import optuna
    from optuna.trial import TrialState

    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    if len(sweep.cfg.params) < 2 or len(complete) < 4:
        return {}
    try:
        return dict(optuna.importance.get_param_importances(study))
    except (RuntimeError, ValueError):  # e.g. every trial with the same value of a parameter
        return {}
