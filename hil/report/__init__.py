"""Reports over run records: loading (runs), night-vs-night comparison (compare, markdown),
the static trend page (html, svg), history of a results directory, and allure metadata.

The run record writer (record.py) belongs to the pytest plugin; everything here only reads.
"""
