"""Command-line group ``bayes-simrmf data``: get real data.

``bayes-simrmf data pull --out DIR`` pulls the Open LLM Leaderboard v2's per-question results,
question texts and LLM metadata from the Hugging Face hub into a dataset folder that
``--data DIR`` reads (see :mod:`bayes_simrmf.hub` and docs/data_pull.md). Every option shows its
default in ``--help``; errors are one line (exit code 1), usage errors exit with code 2.
"""

from __future__ import annotations

from pathlib import Path

import click

from bayes_simrmf.cli.common import SEED
from bayes_simrmf.errors import BayesSimRMFError

__all__ = ["data"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
def data() -> None:
    """Get data: pull the Open LLM Leaderboard's per-question results from the Hugging Face hub."""


@data.command("pull")
@click.option("--out", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Dataset folder to write (responses, items, llms parquet + pull_summary.json); DIR/.pull holds "
                   "the resumable staging area. Required unless --dry-run.")
@click.option("--models", "n_models", type=int, default=None, metavar="N",
              help="Pull N LLMs drawn at random (with --seed) from the leaderboard's contents table. "
                   "[default: all LLMs of the contents table]")
@click.option("--models-file", type=click.Path(dir_okay=False, exists=True), default=None, metavar="FILE",
              help="Pull the LLMs listed in FILE, one Hugging Face id (org/name) per line; '#' starts a comment. "
                   "[default: none]")
@click.option("--seed", type=SEED, default=0, help="Seed of the --models draw and of the retry jitter.")
@click.option("--benchmarks", default="bbh,gpqa,math,mmlu_pro,musr",
              help="Comma-separated benchmarks: bbh, gpqa, math (MATH Lvl 5), mmlu_pro, musr.")
@click.option("--workers", type=click.IntRange(1, 32), default=4,
              help="LLMs fetched concurrently; keep it small to respect the hub's rate limits.")
@click.option("--max-retries", type=click.IntRange(0, 20), default=5,
              help="Retries per hub call on rate limits (429), server errors (5xx), timeouts and dropped "
                   "connections, with exponential backoff (2 s, 4 s, ... at most 120 s, or the server's Retry-After). "
                   "A hub that cannot be reached (no name resolution, connection refused) fails at once.")
@click.option("--hub-root", type=click.Path(file_okay=False, exists=True), default=None, metavar="DIR",
              help="A mirror in the hub's layout, for offline use and tests: DIR/datasets/open-llm-leaderboard/"
                   "<org>__<name>-details/... and DIR/datasets/open-llm-leaderboard/contents/data/*.parquet. "
                   "[default: the Hugging Face hub]")
@click.option("--dry-run", is_flag=True, default=False,
              help="List the LLMs and samples files a pull would fetch, with sizes from the file listings; "
                   "download nothing but the contents table.")
@click.option("--strict", is_flag=True, default=False,
              help="Stop at the first malformed samples file (bad JSON line, missing metric field) instead of "
                   "skipping that file and reporting it.")
@click.option("--keep-downloads", is_flag=True, default=False,
              help="Keep downloaded samples files in the Hugging Face cache (hundreds of MB per LLM) instead of "
                   "deleting each one once parsed.")
@click.option("--quiet", is_flag=True, default=False, help="No progress bar.")
def pull_command(out, n_models, models_file, seed, benchmarks, workers, max_retries, hub_root, dry_run, strict,
                 keep_downloads, quiet) -> None:
    """Pull Open LLM Leaderboard v2 results (BBH, GPQA, MATH Lvl 5, MMLU-Pro, MuSR) into a dataset folder.

    Per question, 0/1 correctness as the leaderboard scores it (BBH, MuSR, GPQA: acc_norm; MMLU-Pro:
    acc; MATH Lvl 5: exact_match), the question text, and the leaderboard's LLM metadata. Re-running the
    same command resumes: LLMs already pulled are skipped. GPQA and other gated datasets need an accepted
    licence and a token (`hf auth login` or HF_TOKEN).

    \b
    Examples:
      bayes-simrmf data pull --out data/openllm --models 50 --dry-run
      bayes-simrmf data pull --out data/openllm --models 50
      bayes-simrmf data pull --out data/openllm --models-file llms.txt --benchmarks bbh,musr
    """
    from bayes_simrmf import hub

    if out is None and not dry_run:
        raise click.UsageError("--out DIR is required (except with --dry-run)")
    if n_models is not None and models_file is not None:
        raise click.UsageError("give either --models N or --models-file FILE, not both")
    try:
        if out is not None and not dry_run:
            from bayes_simrmf.hub.pull import check_pull_folder

            check_pull_folder(out)  # before the hub is asked anything
        models = hub.read_models_file(models_file) if models_file is not None else None
        retry = hub.RetryPolicy(max_attempts=max_retries + 1, seed=seed)
        if hub_root is not None:
            client = hub.LocalHubMirror(hub_root)
        else:
            from huggingface_hub.utils import disable_progress_bars

            disable_progress_bars()  # one bar over LLMs, not one per file
            # scratch for samples files, deleted as each is parsed; a dry run downloads only the contents table
            download_dir = Path(out) / hub.STAGING_DIR / "downloads" if out is not None and not dry_run else None
            client = hub.HfHubClient(download_dir=download_dir, keep_downloads=keep_downloads)
        if dry_run:
            report = hub.dry_run(client, models=models, n_models=n_models, seed=seed, benchmarks=benchmarks,
                                 workers=workers, retry=retry, progress=not quiet)
            click.echo(report.to_text())
            if out is not None:
                click.echo(f"(dry run: nothing written to {out})")
            return
        summary = hub.pull(out, client, models=models, n_models=n_models, seed=seed, benchmarks=benchmarks,
                           workers=workers, strict=strict, retry=retry, progress=not quiet,
                           log=lambda message: click.echo(message, err=True))
    except BayesSimRMFError as error:
        raise click.ClickException(str(error).splitlines()[0] if str(error) else type(error).__name__) from None
    for line in summary.lines():
        click.echo(line)
    click.echo(f"written to {out}: responses.parquet, items.parquet, llms.parquet, {hub.SUMMARY_FILE}")
    if summary.incomplete or summary.skipped_llms:
        click.echo("re-run the same command to retry what was skipped or incomplete", err=True)
