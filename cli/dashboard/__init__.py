"""The operator dashboard (plain HTML): the pipeline today and one person's journey
(`pages.py`); served by `beacon local`, `beacon demo` and `beacon dashboard`."""
