"""Tool backends: vendor benchmark tools (LiteRT ``benchmark_model``, TensorRT ``trtexec``, OpenVINO
``benchmark_app``, a lab's own tool from a TOML file) run on a device through a transport."""
