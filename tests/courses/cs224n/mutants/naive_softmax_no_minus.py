import numpy as np


def naiveSoftmaxLossAndGradient(centerWordVec, outsideWordIdx, outsideVectors, dataset):
    y_hat = np.exp(outsideVectors @ centerWordVec)
    y_hat /= np.sum(y_hat)
    loss = np.log(y_hat[outsideWordIdx])
    y_hat[outsideWordIdx] -= 1
    return loss, outsideVectors.T @ y_hat, np.outer(y_hat, centerWordVec)
