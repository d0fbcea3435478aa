"""Reports over run records.

runs (validating reader, finding runs in a results dir), tolerance and compare (night against
night), markdown (CI summary), html + svg (the static trend page), allure_env (allure metadata),
files (atomic writes). record.py, the writer, belongs to the pytest plugin; the rest only reads.
"""
