#!/usr/bin/env python

import argparse
import numpy as np
import random


def sigmoid(x):
    """
    Compute the sigmoid function for the input here.
    Arguments:
    x -- A scalar or numpy array.
    Return:
    s -- sigmoid(x)
    """

    ### YOUR CODE HERE (~1 Line)
    s = 1 / (1 + np.exp(-x))
    ### END YOUR CODE

    return s


def naiveSoftmaxLossAndGradient(
    centerWordVec,
    outsideWordIdx,
    outsideVectors,
    dataset
):
    """ Naive Softmax loss & gradient function for word2vec models

    centerWordVec -- numpy ndarray, center word's embedding
                    in shape (word vector length, )
    outsideWordIdx -- integer, the index of the outside word
    outsideVectors -- outside vectors is
                    in shape (num words in vocab, word vector length)
    dataset -- needed for negative sampling, unused here.

    Return:
    loss -- naive softmax loss
    gradCenterVec -- the gradient with respect to the center word vector
    gradOutsideVecs -- the gradient with respect to all the outside word vectors
    """

    ### YOUR CODE HERE (~6-8 Lines)
    scores = np.dot(outsideVectors, centerWordVec)
    y_hat = np.exp(scores - np.max(scores))
    y_hat = y_hat / np.sum(y_hat)
    loss = -np.log(y_hat[outsideWordIdx])
    y = np.zeros(y_hat.shape)
    y[outsideWordIdx] = 1
    gradCenterVec = np.dot(outsideVectors.T, y_hat - y)
    gradOutsideVecs = np.outer(y_hat - y, centerWordVec)
    ### END YOUR CODE

    return loss, gradCenterVec, gradOutsideVecs


def getNegativeSamples(outsideWordIdx, dataset, K):
    """ Samples K indexes which are not the outsideWordIdx """

    negSampleWordIndices = [None] * K
    for k in range(K):
        newidx = dataset.sampleTokenIdx()
        while newidx == outsideWordIdx:
            newidx = dataset.sampleTokenIdx()
        negSampleWordIndices[k] = newidx
    return negSampleWordIndices


def negSamplingLossAndGradient(
    centerWordVec,
    outsideWordIdx,
    outsideVectors,
    dataset,
    K=10
):
    """ Negative sampling loss function for word2vec models """

    # Negative sampling of words is done for you. Do not modify this if you
    # wish to match the autograder and receive points!
    negSampleWordIndices = getNegativeSamples(outsideWordIdx, dataset, K)
    indices = [outsideWordIdx] + negSampleWordIndices

    ### YOUR CODE HERE (~10 Lines)
    gradCenterVec = np.zeros(centerWordVec.shape)
    gradOutsideVecs = np.zeros(outsideVectors.shape)

    u_o = outsideVectors[outsideWordIdx]
    z = sigmoid(np.dot(u_o, centerWordVec))
    loss = -np.log(z)
    gradCenterVec += (z - 1) * u_o
    gradOutsideVecs[outsideWordIdx] += (z - 1) * centerWordVec

    for k in negSampleWordIndices:
        u_k = outsideVectors[k]
        z_k = sigmoid(-np.dot(u_k, centerWordVec))
        loss -= np.log(z_k)
        gradCenterVec += (1 - z_k) * u_k
        gradOutsideVecs[k] += (1 - z_k) * centerWordVec
    ### END YOUR CODE

    return loss, gradCenterVec, gradOutsideVecs


def skipgram(currentCenterWord, windowSize, outsideWords, word2Ind,
             centerWordVectors, outsideVectors, dataset,
             word2vecLossAndGradient=naiveSoftmaxLossAndGradient):
    """ Skip-gram model in word2vec """

    loss = 0.0
    gradCenterVecs = np.zeros(centerWordVectors.shape)
    gradOutsideVectors = np.zeros(outsideVectors.shape)

    ### YOUR CODE HERE (~8 Lines)
    centerIdx = word2Ind[currentCenterWord]
    centerWordVec = centerWordVectors[centerIdx]
    for word in outsideWords:
        outsideIdx = word2Ind[word]
        l, gc, go = word2vecLossAndGradient(centerWordVec, outsideIdx, outsideVectors, dataset)
        loss += l
        gradCenterVecs[centerIdx] += gc
        gradOutsideVectors += go
    ### END YOUR CODE

    return loss, gradCenterVecs, gradOutsideVectors


def word2vec_sgd_wrapper(word2vecModel, word2Ind, wordVectors, dataset,
                         windowSize,
                         word2vecLossAndGradient=naiveSoftmaxLossAndGradient):
    batchsize = 50
    loss = 0.0
    grad = np.zeros(wordVectors.shape)
    N = wordVectors.shape[0]
    centerWordVectors = wordVectors[:int(N/2), :]
    outsideVectors = wordVectors[int(N/2):, :]
    for i in range(batchsize):
        windowSize1 = random.randint(1, windowSize)
        centerWord, context = dataset.getRandomContext(windowSize1)

        c, gin, gout = word2vecModel(
            centerWord, windowSize1, context, word2Ind, centerWordVectors,
            outsideVectors, dataset, word2vecLossAndGradient
        )
        loss += c / batchsize
        grad[:int(N/2), :] += gin / batchsize
        grad[int(N/2):, :] += gout / batchsize

    return loss, grad


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description='Test your implementations.')
    parser.add_argument('function', nargs='?', type=str, default='all')
    args = parser.parse_args()
