"""Reports over run records.

Records: model (the objects), parse (one file, one-line errors), runs (find and load runs).
Comparison: matching (which rig with which), tolerance, reasons (why a test failed), compare
(what changed) into changes (the findings). Telling it: grouping (measurements by cause), story
(the order a reader wants), markdown (CI summary), html + html_summary + keyfigs + svg (the
static trend page), phrases (numbers for people). allure_env (allure metadata), files (atomic
writes). record.py, the writer, belongs to the pytest plugin; the rest only reads.
"""
