"""The contracts the runtime packages meet in, and nothing else: the one error root and
what each error means (``errors``), the prediction-log and feedback layouts (``predlog``,
``feedback``), the Prometheus recorder and hub (``prometheus``), task scores shared by
training's gate and the monitor's live quality (``scores``), storage URIs (``fs``) and
the clock (``clock``). Imports only numpy and pyarrow; nothing of ours."""
