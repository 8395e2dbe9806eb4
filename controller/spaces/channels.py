"""Channel rounding shared by the once-for-all spaces."""


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round to a multiple of ``divisor`` without losing more than 10% (MobileNet/OFA convention)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded
