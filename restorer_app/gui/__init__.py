"""The desktop application: the only package that imports Qt. It drives the engine through
restorer_app.jobs (the same queue and runner as ``restorer queue run``)."""
