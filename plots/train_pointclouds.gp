# Issue 6, 3-D point clouds: see plots/train_common.gp for the four panels.
name = 'train_pointclouds'
task = '3-D point clouds, Set-Transformer-style'
ntok = 100
colsum_log = 1
load 'plots/train_common.gp'
