"""Registry tests train a small project, as the training tests do."""

from tests.training.conftest import small_project

__all__ = ["small_project"]
