import numpy as np
import nnfs
from nnfs.datasets import spiral_data

nnfs.init()


# Dense layer, written with the course's functions
def affine_forward(x, w, b):
    inputs = x.reshape(x.shape[0], -1)
    output = np.dot(inputs, w) + b
    return output, (x, w)


def affine_backward(dvalues, cache):
    x, w = cache
    inputs = x.reshape(x.shape[0], -1)
    dweights = np.dot(inputs.T, dvalues)
    dbiases = np.sum(dvalues, axis=0)
    dinputs = np.dot(dvalues, w.T).reshape(x.shape)
    return dinputs, dweights, dbiases


def relu_forward(x):
    return np.maximum(0, x), x


def relu_backward(dvalues, cache):
    dinputs = dvalues.copy()
    dinputs[cache <= 0] = 0
    return dinputs


# Create dataset
X, y = spiral_data(samples=100, classes=3)
weights = 0.01 * np.random.randn(2, 64)
biases = np.zeros(64)

for epoch in range(101):
    hidden, cache = affine_forward(X, weights, biases)
    activated, relu_cache = relu_forward(hidden)
    if not epoch % 100:
        print(f'epoch: {epoch}, mean activation: {activated.mean():.3f}')
