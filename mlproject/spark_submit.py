"""driftctl as a Spark application: ``spark-submit mlproject/spark_submit.py COMMAND ...``.

spark-submit runs Python applications from a ``.py`` file; this one runs the ``driftctl``
command line in the driver, with the Spark session spark-submit configured.
"""

from controller.cli import entry

if __name__ == "__main__":
    entry()
