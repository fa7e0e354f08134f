"""Right functions with their own backward, declared for ``gradmatrix check`` with the checks
of ``check_layer(framework=...)``: a torch GELU to second order and at bfloat16, a softmax
kernel computing in bfloat16 checked at bfloat16 and float16, a JAX ``custom_vjp`` centring.

``tests/test_custom_backward.py`` runs ``gradmatrix check`` on this file (exit 0) and on
``framework_functions_wrong.py`` (exit 1).
"""

from custom_backward import Gelu, SoftmaxBf16, centre, centre_reference, gelu_reference, softmax_reference

import gradmatrix

gelu = gradmatrix.layer(Gelu.apply, shapes={"x": (4, 5)}, reference=gelu_reference, framework="torch",
                        dtypes=("float64", "float32", "bfloat16"), name="gelu")
softmax_kernel = gradmatrix.layer(SoftmaxBf16.apply, shapes={"x": (4, 16)}, reference=softmax_reference,
                                  framework="torch", dtypes=("bfloat16",), name="softmax_kernel")
centring = gradmatrix.layer(centre, shapes={"x": (6, 3)}, reference=centre_reference, framework="jax",
                            dtypes=("float64", "float32", "bfloat16"), name="centring")
