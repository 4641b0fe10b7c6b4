//! Orders: conversion of an accepted quote, reads.
