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
MNIST_IMAGES = 70_000  # the course trains on the training and test sets together
COURSE_STEPS = COURSE_EPOCHS * (MNIST_IMAGES // BATCH_SIZE)  # 2,730: 546 full batches an epoch
COURSE_PARAMETERS = 2_547_457
