"""One module per rule file of ``workflow/rules/``: the functions the Snakemake scripts
call (plain arguments in, files out, every output written atomically by
:mod:`sva.utils.atomic`), so every stage is testable without Snakemake."""
