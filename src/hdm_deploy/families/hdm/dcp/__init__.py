"""HDM's dark-channel-prior region masks: reference (numpy/OpenCV), torch and ONNX implementations.

The ONNX local function's identity is a contract between the exporter (:mod:`.export_op`), the
function builder (:mod:`.onnx_function`), the FP16 policy and the runners: import these names.
"""

from hdm_deploy.core.errors import HdmDeployError


class DCPError(HdmDeployError):
    """The dark-channel-prior mask computation got an input it cannot handle."""


#: Domain, version and name of the DCP masks model-local function.
DCP_DOMAIN = "hdm_deploy.dcp"
DCP_DOMAIN_VERSION = 1
DCP_FUNCTION = "DCPMasks"
