# Issue 6, digits: see plots/train_common.gp for the four panels.
name = 'train_digits'
task = '8x8 digits, attention-only ViT'
ntok = 17
load 'plots/train_common.gp'
