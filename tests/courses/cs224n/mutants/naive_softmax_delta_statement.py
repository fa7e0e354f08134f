import numpy as np


def naiveSoftmaxLossAndGradient(centerWordVec, outsideWordIdx, outsideVectors, dataset):
    y_hat = np.exp(outsideVectors @ centerWordVec)
    y_hat /= np.sum(y_hat)
    loss = -np.log(y_hat[outsideWordIdx])
    delta = y_hat.copy()
    delta[outsideWordIdx] - 1
    return loss, outsideVectors.T @ delta, np.outer(delta, centerWordVec)
