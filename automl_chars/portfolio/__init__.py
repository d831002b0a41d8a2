"""Portfolios: pretrained models, one per source dataset, with what transfer and the similarity
measures need (weights, class names, image shape, an image sample), read without Ray."""

from automl_chars.portfolio.build import add_checkpoint, build_portfolio
from automl_chars.portfolio.entry import MANIFEST_VERSION, PortfolioEntry
from automl_chars.portfolio.portfolio import ENTRY_COLUMNS, Portfolio

__all__ = ["ENTRY_COLUMNS", "MANIFEST_VERSION", "Portfolio", "PortfolioEntry", "add_checkpoint",
           "build_portfolio"]
