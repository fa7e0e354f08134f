import numpy as np

from q1_softmax import softmax
from q2_sigmoid import sigmoid, sigmoid_grad


def forward_backward_prop(data, labels, params, dimensions):
    """Forward and backward propagation for a two-layer sigmoidal network."""
    ### Unpack network parameters (do not modify)
    ofs = 0
    Dx, H, Dy = (dimensions[0], dimensions[1], dimensions[2])

    W1 = np.reshape(params[ofs:ofs + Dx * H], (Dx, H))
    ofs += Dx * H
    b1 = np.reshape(params[ofs:ofs + H], (1, H))
    ofs += H
    W2 = np.reshape(params[ofs:ofs + H * Dy], (H, Dy))
    ofs += H * Dy
    b2 = np.reshape(params[ofs:ofs + Dy], (1, Dy))

    ### YOUR CODE HERE: forward propagation
    h = sigmoid(data.dot(W1) + b1)
    yhat = softmax(h.dot(W2) + b2)
    cost = np.sum(-np.log(yhat[labels == 1]))
    ### END YOUR CODE

    ### YOUR CODE HERE: backward propagation
    d3 = yhat - labels
    gradW2 = h.T.dot(d3)
    gradb2 = np.sum(d3, axis=0, keepdims=True)
    dh = d3.dot(W2.T)
    dz = dh * sigmoid_grad(h)
    gradW1 = data.T.dot(dz)
    gradb1 = np.sum(dz, axis=0, keepdims=True)
    ### END YOUR CODE

    ### Stack gradients (do not modify)
    grad = np.concatenate((gradW1.flatten(), gradb1.flatten(),
        gradW2.flatten(), gradb2.flatten()))

    return cost, grad
