"""``python -m labelfix ...`` runs the ``labelfix`` command (handy where the console script is not on PATH)."""

from labelfix.cli.main import entry_point

if __name__ == "__main__":
    entry_point()
