"""hpc_botan: from a Kob–Andersen glass-former to a trained BOTAN model, on laptops and clusters."""
__version__ = "0.1.0"
