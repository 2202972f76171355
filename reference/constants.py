"""The assessment notebook's constants (docs/course.md, "Constants the notebook sets")."""

IMG_SIZE = 28
IMG_CH = 1
BATCH_SIZE = 128
N_CLASSES = 10
T = 150
BETA_START = 0.0001
BETA_END = 0.02
DOWN_CHS = (64, 64, 128)
T_EMBED_DIM = 8
LEARNING_RATE = 0.001
C_DROP_PROB = 0.1
COURSE_EPOCHS = 5
COURSE_STEPS = 2730  # 5 epochs of 546 full batches over 70,000 images
COURSE_PARAMETERS = 2_547_457
