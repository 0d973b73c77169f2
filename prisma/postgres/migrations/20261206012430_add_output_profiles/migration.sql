-- AlterTable
ALTER TABLE "VirtualLive" ADD COLUMN     "outputProfile" TEXT;

-- CreateTable
CREATE TABLE "VodRendition" (
    "id" TEXT NOT NULL,
    "vodResourceId" TEXT NOT NULL,
    "profileKey" TEXT NOT NULL,
    "path" TEXT,
    "state" TEXT NOT NULL DEFAULT 'CONFORMING',
    "progress" DOUBLE PRECISION NOT NULL DEFAULT 0,
    "error" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "VodRendition_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "VodRendition_vodResourceId_profileKey_key" ON "VodRendition"("vodResourceId", "profileKey");

-- AddForeignKey
ALTER TABLE "VodRendition" ADD CONSTRAINT "VodRendition_vodResourceId_fkey" FOREIGN KEY ("vodResourceId") REFERENCES "VodResource"("id") ON DELETE CASCADE ON UPDATE CASCADE;
