# vectorized negative sampling: a fancy-index += adds a repeated sample once
import sys, os
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from word2vec import getNegativeSamples, sigmoid  # noqa: E402
import numpy as np  # noqa: E402


def negSamplingLossAndGradient(centerWordVec, outsideWordIdx, outsideVectors, dataset, K=10):
    negSampleWordIndices = getNegativeSamples(outsideWordIdx, dataset, K)
    u_o = outsideVectors[outsideWordIdx]
    U_k = outsideVectors[negSampleWordIndices]
    z_o = sigmoid(u_o @ centerWordVec)
    z_k = sigmoid(-U_k @ centerWordVec)
    loss = -np.log(z_o) - np.sum(np.log(z_k))
    gradCenterVec = (z_o - 1) * u_o + (1 - z_k) @ U_k
    gradOutsideVecs = np.zeros(outsideVectors.shape)
    gradOutsideVecs[outsideWordIdx] += (z_o - 1) * centerWordVec
    gradOutsideVecs[negSampleWordIndices] += np.outer(1 - z_k, centerWordVec)
    return loss, gradCenterVec, gradOutsideVecs
