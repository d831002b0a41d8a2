"""Command line: ``automl-chars`` and the shared runner of the experiment scripts."""
