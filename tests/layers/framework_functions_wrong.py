"""Wrong functions with their own backward, declared for ``gradmatrix check``: a GELU whose
first backward is right and whose double backward is wrong (a saved tanh), and the bfloat16
softmax kernel with a wrong formula, checked at bfloat16 (its float64 and float32 gradients
are wrong too).  Each is caught only by a check of ``check_layer(framework=...)`` that the
command runs as well: second order, low precision."""

from custom_backward import GeluSavedTanh, SoftmaxBf16WrongFormula, gelu_reference, softmax_reference

import gradmatrix

gelu_saved_tanh = gradmatrix.layer(GeluSavedTanh.apply, shapes={"x": (4, 5)}, reference=gelu_reference,
                                   framework="torch", name="gelu_saved_tanh")
softmax_wrong = gradmatrix.layer(SoftmaxBf16WrongFormula.apply, shapes={"x": (4, 16)},
                                 reference=softmax_reference, framework="torch", dtypes=("bfloat16",),
                                 name="softmax_wrong")
