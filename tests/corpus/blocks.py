"""Small instances of the course's seven U-Net blocks, for tests that compare two implementations.

name -> (constructor arguments, shapes of the forward inputs). Sizes are the smallest that still
exercise every layer (an UpBlock's skip connection, the embedding's sine and cosine halves).
Plain tuples and numbers, so a test can also hand them to a subprocess as JSON.
"""

BLOCK_CASES = {
    "GELUConvBlock": ((3, 8, 4), [(2, 3, 8, 8)]),
    "RearrangePoolBlock": ((8, 4), [(2, 8, 8, 8)]),
    "DownBlock": ((4, 8, 4), [(2, 4, 8, 8)]),
    "UpBlock": ((8, 4, 2), [(2, 8, 4, 4), (2, 8, 4, 4)]),
    "SinusoidalPositionEmbedBlock": ((8,), [(5,)]),
    "EmbedBlock": ((10, 16), [(3, 10)]),
    "ResidualConvBlock": ((1, 8, 4), [(2, 1, 8, 8)]),
}
BLOCK_NAMES = tuple(sorted(BLOCK_CASES))
