"""Reports: tables and figures built from run records."""
